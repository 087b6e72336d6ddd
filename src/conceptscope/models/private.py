"""The private copy of a user's model that every part of conceptscope works on, and the version that tells when to
redo it: the user's model never sees a hook, a mode switch, a merged BatchNorm or a ``requires_grad`` change."""
import copy
from collections import OrderedDict

import torch

_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
          "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")


def private_copy(model, canonizers=()):
    """A deep copy of ``model`` in eval mode, without the user's hooks, with out-of-place activations and frozen
    parameters, that the caller may change at will; ``canonizers`` (e.g. an Explainer's ``composite.canonizers``) are
    applied to it and never reverted."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for hooks in _HOOKS:
            if hasattr(module, hooks):
                setattr(module, hooks, OrderedDict())
        if getattr(module, "inplace", False) is True:  # in-place activations break backward hooks and recorded values
            module.inplace = False
    clone = clone.eval().requires_grad_(False)
    for canonizer in canonizers:
        canonizer.apply(clone)
    return clone


def weights_version(model):
    """Which tensors the model holds and how often each was changed in place: a copy is redone when this moves."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))
