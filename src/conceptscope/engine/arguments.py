"""Checks of the engine's plain arguments (counts, layer names, channel ids), with errors that say what is accepted.

Booleans are not numbers here: ``k=True`` is a mistake, not 1.
"""
import numbers

import numpy as np
import torch


def is_integer(value):
    """An int, numpy integer or integer 0-d tensor, but not a bool."""
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.is_floating_point() and not value.is_complex() \
            and value.dtype != torch.bool
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def count(name, value, minimum=1, optional=False):
    """``value`` as an int >= ``minimum`` (None passes where ``optional``); else an error naming ``name``."""
    if value is None and optional:
        return None
    if not is_integer(value):
        accepted = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise TypeError(f"{name} must be {accepted}; got {type(value).__name__} {short(value)}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {int(value)}")
    return int(value)


def layer_names(layers, what="layers"):
    """``layers`` (one name or a sequence of names) as a list of strings."""
    if isinstance(layers, str):
        return [layers]
    if not isinstance(layers, (bytes, torch.nn.Module)) and hasattr(layers, "__iter__"):
        names = list(layers)
        if all(isinstance(name, str) for name in names):
            return names
    raise TypeError(f"{what} must be a layer name or a list of layer names (strings); got {short(layers)}")


def channel_ids(layer, ids, channels):
    """``ids`` (one channel id, or a flat sequence, array or tensor of them) as a non-empty list of ints in
    ``0..channels-1``."""
    accepted = (f"channel ids of layer {layer!r} must be integers in 0..{channels - 1} (one, or a flat list, array or "
                "tensor of them)")
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim > 1:
            raise ValueError(f"{accepted}; got an array of shape {ids.shape}")
        ids = ids.reshape(-1).tolist() if ids.dtype.kind in "iu" else list(ids.reshape(-1))
    elif is_integer(ids):
        ids = [ids]
    elif isinstance(ids, (str, bytes, dict, set, frozenset)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"{accepted}; got {type(ids).__name__} {short(ids)}")
    ids = list(ids)
    bad = [i for i in ids if not is_integer(i)]
    if bad:
        raise TypeError(f"{accepted}; got {short(bad)}")
    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError(f"no channels given for layer {layer!r}: pass at least one channel id")
    out = [i for i in ids if not 0 <= i < channels]
    if out:
        raise ValueError(f"channel ids {short(out)} are out of range for layer {layer!r}, which has {channels} "
                         f"channels (valid ids: 0..{channels - 1})")
    return ids


def short(value, limit=120):
    """``repr(value)``, cut to ``limit`` characters (a bad argument may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
