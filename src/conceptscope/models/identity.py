"""What a model and its LRP composite are, as data: a digest of the weights and a JSON description of a zennit
composite (its canonizers and, per layer type, the rule and the rule's settings, read from the rule objects).

The atlas stores both to refuse data computed for another model or composite; the lens keys concept embeddings by the
foundation model's digest.
"""
import hashlib

import torch

_RUNTIME = ("stored_tensors", "tensor_handles", "active")  # rule attributes that are state, not settings


def tensor_bytes(tensor):
    """The raw bytes of a tensor (on the CPU, contiguous), for hashing."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def model_digest(model):
    """SHA-256 of the model's state_dict: every entry's name, dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


def _plain(value):
    """``value`` as JSON if it is a readable setting (number, string, small tensor), else None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() <= 16:
        return value.flatten().tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return None


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:  # a closure cell not yet assigned
        return None


def _settings(obj, found, depth=0):
    """Collect readable settings of a zennit rule: plain attributes and the free variables of its closures, followed
    into zennit objects (stabilizers, parameter modifiers) and functions a few levels deep."""
    if depth > 4:
        return
    if hasattr(obj, "__code__"):
        items = [(name, _contents(cell)) for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ())]
    elif type(obj).__module__.startswith("zennit"):
        items = [(name, value) for name, value in vars(obj).items() if name not in _RUNTIME]
    else:
        return
    for name, value in items:
        plain = _plain(value)
        if plain is not None or value is None:
            if plain not in found.setdefault(name, []):
                found[name].append(plain)
        for part in value if isinstance(value, (list, tuple)) else [value]:
            _settings(part, found, depth + 1)


def describe_rule(rule):
    """``{"rule": class name, setting: value, ...}`` of a zennit rule (e.g. epsilon, gamma, alpha, beta, box bounds)."""
    found = {}
    _settings(rule, found)
    return {"rule": type(rule).__name__, **{k: v[0] if len(v) == 1 else v for k, v in sorted(found.items())}}


def _type_names(types):
    types = types if isinstance(types, tuple) else (types,)
    return [t.__name__ for t in types]


def describe_composite(composite):
    """The composite as JSON: class name, canonizers and for each layer-type mapping the rule and its settings."""
    description = {"class": type(composite).__name__,
                   "canonizers": [type(c).__name__ for c in getattr(composite, "canonizers", None) or ()]}
    for attribute in ("first_map", "layer_map"):
        mapping = getattr(composite, attribute, None)
        if mapping:
            description[attribute] = [[_type_names(types), describe_rule(rule)] for types, rule in mapping]
    return description
