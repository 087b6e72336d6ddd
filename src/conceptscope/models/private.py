"""The private copy of a user's model that every part of conceptscope works on, and the fingerprint that tells when to
redo it: the user's model never sees a hook, a mode switch, a merged BatchNorm or a ``requires_grad`` change."""
import copy
from collections import OrderedDict

import torch
import xxhash

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


def model_fingerprint(model):
    """What a private copy depends on, cheap enough to take on every call: each module's name, type, plain settings
    (stride, eps, inplace, ...) and replaced ``forward``, and each parameter's and buffer's name, dtype, device, shape
    and content (an xxh3 hash of its bytes: about 24 ms for VGG-16's 528 MiB on one CPU core, a few percent of a
    forward pass). Any change torch can make to a model moves it: in place or through ``.data``, by assignment,
    ``load_state_dict`` or ``vector_to_parameters``, by replacing a module (parameterless ones such as ReLU too), by
    ``.half()`` or ``.to(device)``."""
    structure = tuple((name, type(module), _settings(module)) for name, module in model.named_modules())
    tensors = tuple((name, t.dtype, t.device, tuple(t.shape), _content(t))
                    for name, t in (*model.named_parameters(), *model.named_buffers()))
    return structure, tensors


def _settings(module):
    """A module's plain public attributes (numbers, strings, tuples of them) and its instance-level ``forward``."""
    plain = tuple((key, value) for key, value in vars(module).items()
                  if not key.startswith("_") and key != "training" and _is_plain(value))
    return plain, vars(module).get("forward")


def _is_plain(value):
    if isinstance(value, tuple):
        return all(_is_plain(item) for item in value)
    return isinstance(value, (bool, int, float, str, type(None)))


def _content(tensor):
    """An xxh3 hash of the tensor's bytes (copied to the CPU first where it lives elsewhere); None for meta tensors."""
    if tensor.is_meta:
        return None
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return xxhash.xxh3_64_intdigest(data)
