"""The atlas directory: a JSON manifest plus safetensors state files, written atomically, with a content identity.

Layout of an atlas directory::

    manifest.json              identity (model weights digest, dataset fingerprint, composite), settings, progress
    state-<samples>.safetensors the running top-k buffers and class statistics after <samples> dataset items

The manifest is the commit record: a checkpoint writes a new state file first and the manifest naming it last, each
through a temporary file in the same directory, ``fsync`` and ``os.replace``. A reader (or a resumed build) follows
the manifest only, so it never sees a half-written or uncommitted state. No pickle is used anywhere.
"""
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

FORMAT = "conceptscope.atlas/1"
MANIFEST = "manifest.json"
_STATE = re.compile(r"state-\d+\.safetensors")
_TEMP = re.compile(r"\.(manifest\.json|state-\d+\.safetensors)\.\d+\.tmp")
_RUNTIME = ("stored_tensors", "tensor_handles", "active")  # rule attributes that are state, not settings


class AtlasMismatchError(ValueError):
    """The atlas on disk was built for another model, dataset, composite or with other settings."""


# -- atomic IO -------------------------------------------------------------------------------------------------------
def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that readers see either the old file or the complete new one."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(directory):
    """Make a rename durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path):
    """The manifest of the atlas at ``path``, or None if there is none."""
    file = Path(path) / MANIFEST
    if not file.exists():
        return None
    manifest = json.loads(file.read_text())
    if manifest.get("format") != FORMAT:
        raise AtlasMismatchError(f"{file} has format {manifest.get('format')!r}; this version reads {FORMAT!r}")
    return manifest


def commit(path, manifest, tensors):
    """Write a checkpoint: the state file named in ``manifest["state"]``, then the manifest, then drop stale files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / manifest["state"], save_tensors({key: value.contiguous().cpu() for key, value in
                                                         tensors.items()}))
    atomic_write(path / MANIFEST, json.dumps(manifest, indent=1).encode())
    for entry in path.iterdir():
        if _STATE.fullmatch(entry.name) and entry.name != manifest["state"]:
            entry.unlink()


def load_tensors(path, manifest, device="cpu"):
    """Every tensor of the committed state of the atlas at ``path``."""
    with safe_open(Path(path) / manifest["state"], "pt", device=str(device)) as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def load_slice(path, manifest, key, index):
    """``tensor[index]`` of one tensor of the committed state, read without loading the rest."""
    with safe_open(Path(path) / manifest["state"], "pt") as handle:
        return handle.get_slice(key)[index]


def prepare_directory(path):
    """Check that ``path`` may hold a new atlas (missing, empty, or only leftovers of an interrupted first checkpoint)
    and remove those leftovers; refuse a directory holding anything else."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"atlas path {path} exists and is not a directory")
    if not path.exists():
        return
    ours = (_STATE, _TEMP)
    foreign = [entry.name for entry in path.iterdir() if not any(pattern.fullmatch(entry.name) for pattern in ours)]
    if foreign:
        raise FileExistsError(f"{path} is not empty and holds no atlas (found {', '.join(sorted(foreign)[:5])}); "
                              "choose an empty or new directory")
    for entry in path.iterdir():
        entry.unlink()


def remove_temporaries(path):
    """Delete temporary files left by writers that were killed mid-write."""
    for entry in Path(path).iterdir():
        if _TEMP.fullmatch(entry.name):
            entry.unlink()


# -- identity --------------------------------------------------------------------------------------------------------
def _tensor_bytes(tensor):
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def model_digest(model):
    """SHA-256 of the model's state_dict: every entry's name, dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _hash_item(digest, item):
    if isinstance(item, torch.Tensor):
        digest.update(f"tensor|{item.dtype}|{tuple(item.shape)}|".encode())
        digest.update(_tensor_bytes(item))
    elif isinstance(item, np.ndarray):
        _hash_item(digest, torch.from_numpy(np.ascontiguousarray(item)))
    elif isinstance(item, (tuple, list)):
        digest.update(f"seq{len(item)}|".encode())
        for part in item:
            _hash_item(digest, part)
    elif isinstance(item, dict):
        for key in sorted(item, key=str):
            digest.update(f"key|{key}|".encode())
            _hash_item(digest, item[key])
    else:
        digest.update(f"{type(item).__name__}|{item!r}|".encode())


def dataset_fingerprint(dataset, samples=8):
    """The dataset's length plus a SHA-256 of ``samples`` items spread evenly over it (first and last included)."""
    length = len(dataset)
    digest = hashlib.sha256()
    for index in sorted(set(np.linspace(0, length - 1, samples).round().astype(int).tolist())) if length else []:
        digest.update(f"item{index}|".encode())
        _hash_item(digest, dataset[index])
    return {"length": length, "sample_hash": digest.hexdigest()}


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


def identity(explainer, dataset=None):
    """What an atlas is valid for: the model's weights, the LRP composite and (if given) the dataset."""
    found = {"model": {"class": type(explainer.model).__name__, "digest": model_digest(explainer.model)},
             "composite": describe_composite(explainer.composite)}
    if dataset is not None:
        found["dataset"] = {"class": type(dataset).__name__, **dataset_fingerprint(dataset)}
    return json.loads(json.dumps(found))  # exactly as it will read back from the manifest


def check_identity(path, stored, actual):
    """Raise :class:`AtlasMismatchError` naming what differs between the stored and the actual identity (the dataset
    only if ``actual`` has one)."""
    old, new = stored["model"], actual["model"]
    if old["digest"] != new["digest"]:
        raise AtlasMismatchError(f"atlas at {path} was built for a different model (weights digest "
                                 f"{old['digest'][:12]}… of a {old['class']} vs {new['digest'][:12]}… of the "
                                 f"explainer's {new['class']})")
    old, new = stored["composite"], actual["composite"]
    if old != new:
        differing = [key for key in dict.fromkeys([*old, *new]) if old.get(key) != new.get(key)]
        detail = "; ".join(f"{key}: {json.dumps(old.get(key))} vs {json.dumps(new.get(key))}" for key in differing)
        raise AtlasMismatchError(f"atlas at {path} was built with a different LRP composite ({detail})")
    if "dataset" not in actual:
        return
    old, new = stored["dataset"], actual["dataset"]
    if old["length"] != new["length"]:
        raise AtlasMismatchError(f"atlas at {path} was built for a different dataset (length {old['length']} vs "
                                 f"{new['length']})")
    if old["sample_hash"] != new["sample_hash"]:
        raise AtlasMismatchError(f"atlas at {path} was built for a different dataset (same length {old['length']}, but "
                                 f"sampled items hash {old['sample_hash'][:12]}… vs {new['sample_hash'][:12]}…; a "
                                 "dataset with random augmentation never matches: use a deterministic transform)")


def check_config(path, stored, requested):
    """Raise :class:`AtlasMismatchError` naming the settings in which a requested build differs from the stored one."""
    diffs = [f"{key}={stored.get(key)!r} vs {value!r}" for key, value in requested.items() if stored.get(key) != value]
    if diffs:
        raise AtlasMismatchError(f"atlas at {path} was built with other settings ({'; '.join(diffs)}); build into "
                                 "another directory or delete this one")
