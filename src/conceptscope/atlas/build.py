"""The streaming atlas build: one pass over the dataset, every layer recorded in the same forward/backward pass.

Batches are fixed slices of the dataset order (no shuffling). With ``torch.distributed`` initialised, rank r takes
batches r, r + W, r + 2W, ...; every ``checkpoint_every`` rounds the ranks' partial statistics are gathered and merged,
and rank 0 commits the merged state (a prefix of the dataset) to disk. Because every batch is the same batch in any
run and the merge is order-independent, interrupted, resumed and sharded builds end with the same bits as one plain
run, as long as each batch is computed with the same numerics: the same ``batch_size`` and device, and on CPU the same
number of threads (batched kernels round differently otherwise; torchrun gives each worker one thread by default).
"""
import math
from contextlib import ExitStack

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..errors import AtlasMismatchError
from . import distributed, identity, store
from .samples import split_item
from .state import MODES, TARGETS, AtlasState, explained_for


class _Indexed(Dataset):
    """The dataset with each item's index attached, so a batch knows which samples it holds."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return index, self.dataset[index]


class _Batches:
    """This rank's batches of the items ``start..n-1``: batch b is ``start + b*batch_size ...``, for b = rank, rank +
    size, ... (index lists made on the fly, so memory does not grow with the dataset)."""

    def __init__(self, start, n, batch_size, rank, size):
        self.start, self.n, self.batch_size, self.rank, self.size = start, n, batch_size, rank, size

    def __len__(self):
        return len(range(self.rank, math.ceil((self.n - self.start) / self.batch_size), self.size))

    def __iter__(self):
        for batch in range(self.rank, math.ceil((self.n - self.start) / self.batch_size), self.size):
            first = self.start + batch * self.batch_size
            yield list(range(first, min(first + self.batch_size, self.n)))


class _Collate:
    """Stack a batch, checking that every image has the shape of item 0."""

    def __init__(self, shape, target):
        self.shape, self.target = shape, target

    def __call__(self, items):
        indices, images, labels = [], [], []
        for index, item in items:
            image, label = split_item(item, index, self.target)
            if tuple(image.shape) != self.shape:
                raise ValueError(f"dataset item {index} has shape {tuple(image.shape)}, but item 0 has shape "
                                 f"{self.shape}: every item must be an image of the same shape")
            indices.append(index)
            images.append(image)
            labels.append(label)
        return indices, torch.stack(images), labels


def _check_arguments(explainer, dataset, layers, k, modes, batch_size, target, checkpoint_every):
    layers = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    if not layers:
        raise ValueError(f"no layers given; concept layers of the model: {', '.join(explainer.layers)}")
    for layer in layers:
        explainer.check_layer(layer)
    if isinstance(modes, str) or not modes or not set(modes) <= set(MODES):
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes!r}")
    modes = tuple(mode for mode in MODES if mode in modes)
    for name, value in (("k", k), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    return layers, modes


def _probe(explainer, dataset, layers, target):
    """Run item 0 forward to learn the image shape, the channels of each layer and the number of classes."""
    image, _ = split_item(dataset[0], 0, target)
    try:
        logits, activations = explainer.forward(image[None], layers)
    except (TypeError, ValueError) as error:
        raise type(error)(f"dataset item 0 cannot be explained: {error}") from error
    if logits.dim() > 2 and target in ("label", "prediction"):
        raise ValueError(f"the model's output has shape {tuple(logits.shape)}: a dense output has no one class per "
                         f"image to explain, so target={target!r} does not apply; use target='region' for a segmenter "
                         "(each image's largest predicted region) or target='peak' for a score map such as a "
                         "detector's (each image's strongest detection)")
    if logits.dim() != 4 and target == "region":
        raise ValueError(f"target='region' explains a segmenter's predicted regions and needs a (batch, classes, H, W) "
                         f"output; this model's output has shape {tuple(logits.shape)}")
    channels = {layer: int(activations[layer].shape[1]) for layer in layers}
    return tuple(image.shape), channels, int(logits.shape[1])


def _open(path, explainer, dataset, config, batch_size, empty):
    """Rank 0, holding the build lock: the manifest and state to continue from (fresh ones for a new atlas); refuses a
    mismatching path or damaged files."""
    manifest = store.read_manifest(path)
    found = identity.of(explainer, dataset)
    if manifest is None:
        store.prepare_directory(path)
        progress = {"samples_done": 0, "samples": len(dataset), "complete": False, "batch_size": batch_size}
        return {"format": store.FORMAT, "identity": found, "config": config, "progress": progress,
                "state": None}, empty()
    identity.check_identity(path, manifest["identity"], found)
    identity.check_config(path, manifest["config"], config)
    store.check_state(path, manifest)
    if manifest["progress"]["complete"]:
        return manifest, None
    if manifest["format"] != store.FORMAT:
        raise AtlasMismatchError(f"the atlas at {path} is an unfinished build of an earlier conceptscope (format "
                                 f"{manifest['format']!r}), which cannot be resumed: delete the directory and build "
                                 "again")
    store.remove_temporaries(path)
    tensors = store.load_tensors(path, manifest, explainer.device)
    return manifest, AtlasState(tensors, config["layers"], config["modes"], config["k"])


def build_atlas(explainer, dataset, layers, path, k=32, modes=MODES, batch_size=32, target="label",
                checkpoint_every=50, num_workers=0, progress=True):
    """Build (or resume, or return the finished) atlas at ``path``; the manifest on rank 0, None on other ranks.

    See :meth:`conceptscope.atlas.Atlas.build` for the arguments.
    """
    layers, modes = _check_arguments(explainer, dataset, layers, k, modes, batch_size, target, checkpoint_every)
    shape, channels, classes = _probe(explainer, dataset, layers, target)
    names = getattr(dataset, "classes", None)
    if (names is None or len(names) != classes) and explainer.classes is not None:
        names = explainer.classes  # e.g. a segmenter's, with its background class
    config = {"layers": channels, "k": k, "modes": list(modes), "target": target, "classes": classes,
              "class_names": list(names) if names is not None and len(names) == classes else None}
    rank, size = distributed.rank_and_size()

    def empty():
        return AtlasState.empty(channels, modes, k, classes, explainer.device)

    with ExitStack() as held:  # rank 0 holds the directory's build lock until the build ends (or fails)
        failure, manifest, state, done, complete = None, None, None, 0, 0
        if rank == 0:
            try:
                held.enter_context(store.directory(path))
                held.enter_context(store.build_lock(path))
                manifest, state = _open(path, explainer, dataset, config, batch_size, empty)
                done, complete = manifest["progress"]["samples_done"], int(manifest["progress"]["complete"])
            except Exception as error:  # re-raised below, after telling the other ranks
                failure = error
        status, done, complete = distributed.broadcast([failure is not None, done, complete])
        if failure is not None:
            raise failure
        if status:
            raise RuntimeError(f"rank 0 refused to build the atlas at {path} (see its error)")
        if complete:
            return manifest
        state = state if rank == 0 else empty()

        n = len(dataset)
        count = math.ceil((n - done) / batch_size)  # batches left
        sampler = _Batches(done, n, batch_size, rank, size)
        loader = iter(DataLoader(_Indexed(dataset), batch_sampler=sampler, collate_fn=_Collate(shape, target),
                                 num_workers=num_workers, pin_memory=explainer.device.type == "cuda"))
        bar = tqdm(total=n, initial=done, unit="img", desc="atlas", disable=not progress or rank != 0, smoothing=0.1)
        rounds = math.ceil(count / size)
        generation = explainer.sync()  # the model the atlas is stamped with; it must not change during the build
        for round_ in range(rounds):
            if round_ < len(sampler):
                indices, images, labels = next(loader)
                attribution = explainer.attribute(images, explained_for(target, labels), layers, heatmaps=False)
                if explainer.generation != generation:
                    raise RuntimeError(
                        f"the model changed while the atlas at {path} was being built (after {bar.n} of {n} "
                        "samples), so its references would mix two models. Keep the model unchanged during the build; "
                        "delete the directory and build again")
                state.update(indices, attribution)
            ended = min(n, done + (round_ + 1) * size * batch_size)
            bar.update(ended - bar.n)
            last = round_ == rounds - 1
            if last or (round_ + 1) % checkpoint_every == 0:
                merged = AtlasState.merge(distributed.gather(state))
                if rank == 0:
                    manifest = {**manifest, "state": f"state-{ended:012d}.safetensors",
                                "progress": {"samples_done": ended, "samples": n, "complete": last,
                                             "batch_size": batch_size}}
                    store.commit(path, manifest, merged.tensors)
                state = merged if rank == 0 else empty()
        bar.close()
        return manifest if rank == 0 else None
