"""Concept embeddings: each concept's top-n reference images embedded with a foundation model, computed in batches
and cached in the atlas directory.

Cache: ``<atlas>/semantics/<key>.safetensors``, one file per identity (the atlas' identity, settings and committed
state, the foundation model's name and weights digest, n, mode, crop settings and layers), written atomically with the
identity in its metadata. ``key`` is a hash of the identity; a file whose stored identity differs is never used (it is
recomputed and replaced), so other settings never read each other's embeddings.
"""
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors

from ..atlas import store
from .formulas import concept_embeddings
from .references import reference_images, reference_table

FORMAT = "conceptscope.semantics/2"  # 2: dead concepts have no references
DIRECTORY = "semantics"


@dataclass(frozen=True)
class LayerEmbeddings:
    """The embedded references of a layer's C concepts: ``references`` (C, n, D) L2-normalised (zero in empty
    slots), ``valid`` (C, n) which slots hold a reference, ``indices`` (C, n) their dataset indices (-1 in empty
    slots) and ``concepts`` (C, D), each concept's normalised mean reference embedding (zero without references)."""
    references: torch.Tensor
    valid: torch.Tensor
    indices: torch.Tensor
    concepts: torch.Tensor

    @classmethod
    def of(cls, references, valid, indices):
        return cls(references, valid, indices, concept_embeddings(references, valid))

    @property
    def present(self):
        """(C,) which concepts have at least one reference."""
        return self.valid.any(-1)


def identity(atlas, foundation, layers, n, mode, crop, window):
    """Everything the embeddings depend on, as JSON-ready data."""
    manifest = atlas.manifest
    return {"format": FORMAT,
            "atlas": {"identity": manifest["identity"], "config": manifest["config"], "state": manifest["state"]},
            "foundation": {"name": foundation.name, "digest": foundation.digest},
            "references": {"n": n, "mode": mode, "crop": crop, "window": window if crop == "window" else None},
            "layers": list(layers)}


def cache_path(atlas, key_identity):
    """The cache file of an identity inside the atlas directory."""
    text = json.dumps(key_identity, sort_keys=True)
    return Path(atlas.path) / DIRECTORY / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.safetensors"


def compute(atlas, foundation, layers, n, mode, crop, window, batch_size, progress):
    """``{layer: LayerEmbeddings}``: every needed reference picture cut by ``crop``, embedded in batches of
    ``batch_size`` as the pictures stream in (pictures are not all held in memory)."""
    table = reference_table(atlas, layers, n, mode)
    found = {layer: torch.zeros(*indices.shape, foundation.embed_dim) for layer, indices in table.items()}
    images, targets = [], []

    def flush():
        if images:
            for vector, slots in zip(foundation.encode_images(images, batch_size).cpu(), targets):
                for layer, channel, slot in slots:
                    found[layer][channel, slot] = vector
            images.clear()
            targets.clear()

    for image, slots in reference_images(atlas, table, mode, crop, window, progress):
        images.append(image)
        targets.append(slots)
        if len(images) >= batch_size:
            flush()
    flush()
    return {layer: LayerEmbeddings.of(found[layer], table[layer] >= 0, table[layer]) for layer in layers}


def _read(path, wanted):
    """The cached embeddings at ``path`` if the file holds exactly ``wanted``'s identity, else None."""
    if not path.exists():
        return None
    try:
        with safe_open(path, "pt") as handle:
            stored = json.loads((handle.metadata() or {}).get("identity", "null"))
            if stored != json.loads(json.dumps(wanted)):
                warnings.warn(f"{path} holds embeddings of another identity; recomputing", stacklevel=3)
                return None
            # copies: the tensors safetensors returns may map the file, which another writer could change
            tensors = {key: handle.get_tensor(key).clone() for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        warnings.warn(f"cannot read cached embeddings {path} ({error}); recomputing", stacklevel=3)
        return None
    return {layer: LayerEmbeddings.of(tensors[f"{layer}/references"], tensors[f"{layer}/valid"],
                                      tensors[f"{layer}/indices"]) for layer in wanted["layers"]}


def _write(path, wanted, embeddings):
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"{layer}/{name}": getattr(layer_embeddings, name).contiguous()
               for layer, layer_embeddings in embeddings.items() for name in ("references", "valid", "indices")}
    store.atomic_write(path, save_tensors(tensors, metadata={"identity": json.dumps(wanted, sort_keys=True)}))


def embed_concepts(atlas, foundation, layers, n, mode, crop, window, batch_size, progress):
    """``({layer: LayerEmbeddings}, cache path, loaded from cache?)``: the cached embeddings of these settings, or
    freshly computed ones (then cached)."""
    wanted = identity(atlas, foundation, layers, n, mode, crop, window)
    path = cache_path(atlas, wanted)
    cached = _read(path, wanted)
    if cached is not None:
        return cached, path, True
    embeddings = compute(atlas, foundation, layers, n, mode, crop, window, batch_size, progress)
    _write(path, wanted, embeddings)
    return embeddings, path, False
