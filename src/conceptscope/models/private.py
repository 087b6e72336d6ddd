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
    and content (an xxh3 hash of its bytes, read once: on one CPU core about 1-2% of the time of an LRP heatmap of
    VGG-16 or ResNet-50 at 224x224). Any change torch can make to a model moves it: in place or through ``.data``, by
    assignment, ``load_state_dict`` or ``vector_to_parameters``, by replacing a module (parameterless ones such as ReLU
    too), by ``.half()`` or ``.to(device)``."""
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
    """What the tensor holds: an xxh3 hash of its bytes on the CPU, a :func:`device_checksum` elsewhere (no copy to
    the host); None for meta tensors, which hold nothing."""
    if tensor.is_meta:
        return None
    data = tensor.detach().contiguous().reshape(-1)
    if data.device.type == "cpu":
        return xxhash.xxh3_64_intdigest(data.view(torch.uint8).numpy())
    return device_checksum(data)


CHUNK = 1 << 24  # words per step of device_checksum: bounds its temporary memory to ~256 MiB


WORDS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int32, 16: torch.int32}


def device_checksum(data):
    """A checksum of a flat contiguous tensor computed where it lives: the sum of its 32-bit words (its 16- or 8-bit
    elements where they are smaller) and their sum weighted by position (1, 2, ...), in wrapping 64-bit integers. A
    change of one or two words, and a swap of any two, always moves it."""
    words = data.view(WORDS[data.element_size()])
    total = torch.zeros(2, dtype=torch.int64, device=data.device)
    for start in range(0, words.numel(), CHUNK):
        chunk = words[start:start + CHUNK].to(torch.int64)
        position = torch.arange(start + 1, start + 1 + chunk.numel(), dtype=torch.int64, device=data.device)
        total += torch.stack([chunk.sum(), (chunk * position).sum()])
    return tuple(total.tolist())
