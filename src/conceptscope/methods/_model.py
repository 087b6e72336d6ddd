"""The private copy of the user's model that every method runs on, and the checks shared by the methods."""
import copy
from collections import OrderedDict

import torch

_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
          "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")


def private_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode, without the user's hooks, with out-of-place ReLUs and frozen parameters.

    Captum's guided backprop and deconvnet hook every ReLU and the CAM methods hook a layer: they do so on this copy,
    so the user's model never sees a hook, a mode switch or a ``requires_grad`` change.
    """
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for hooks in _HOOKS:
            if hasattr(module, hooks):
                setattr(module, hooks, OrderedDict())
        if getattr(module, "inplace", False) is True:  # in-place ReLUs break backward hooks
            module.inplace = False
    return clone.eval().requires_grad_(False)


def weights_version(model: torch.nn.Module) -> tuple:
    """Which tensors the model holds and how often each was changed in place: the copy is redone when it moves."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def check_finite(maps: torch.Tensor, method: str) -> torch.Tensor:
    """``maps`` if every value is finite and some map is not all zero, else a clear error (never a silent result)."""
    if not torch.isfinite(maps).all():
        raise FloatingPointError(f"method {method!r} produced NaN or infinite relevance; check the input's scale "
                                 "and the model's outputs (a softmax or log inside the model can overflow)")
    vanished = (maps.flatten(1) == 0).all(1)
    if vanished.any():
        rows = vanished.nonzero()[:, 0].tolist()
        raise FloatingPointError(f"method {method!r} produced an all-zero map for image(s) {rows}: the relevance "
                                 "vanished (e.g. Grad-CAM of a class with negative evidence only, or a dead layer); "
                                 "try another target, layer or method")
    return maps
