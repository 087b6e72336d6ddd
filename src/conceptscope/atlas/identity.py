"""The identity of an atlas: the model's weights digest, the LRP composite (and the concept axes the user chose) and
the dataset's fingerprint it was built for, stored in the manifest and checked on every load and resumed build, with
errors naming what differs."""
import hashlib
import json

import numpy as np
import torch

from ..errors import AtlasMismatchError
from ..models.identity import describe_composite, tensor_bytes


def _hash_item(digest, item):
    if isinstance(item, torch.Tensor):
        digest.update(f"tensor|{item.dtype}|{tuple(item.shape)}|".encode())
        digest.update(tensor_bytes(item))
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


def of(explainer, dataset=None):
    """What an atlas is valid for: the weights the explainer computes with, the LRP composite and (if given) the
    dataset."""
    found = {"model": {"class": type(explainer.model).__name__, "digest": explainer.weights_digest()},
             "composite": describe_composite(explainer.composite)}
    if explainer.concept_axis:  # only where the user chose an axis: atlases built before keep their identity
        found["concept_axis"] = dict(explainer.concept_axis)
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
    if stored.get("concept_axis", {}) != actual.get("concept_axis", {}):
        raise AtlasMismatchError(f"atlas at {path} was built with other concept axes (Explainer(concept_axis=...): "
                                 f"{json.dumps(stored.get('concept_axis', {}))} vs "
                                 f"{json.dumps(actual.get('concept_axis', {}))})")
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
