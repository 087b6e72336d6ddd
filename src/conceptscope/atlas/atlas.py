"""A built atlas: reference samples per concept (RelMax/ActMax), relevance-cropped, and per-class concept statistics."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..engine import ConceptScore
from ..errors import UnknownLayerError
from . import crop as cropping
from . import identity, store
from .build import build_atlas
from .samples import Sample, load_sample
from .state import FIXED_POINT, MODES, explained_for

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from ..engine import Explainer

#: a class by index or by name
ClassKey = int | str


@dataclass(frozen=True)
class Reference:
    """A reference sample of a concept: dataset ``index``, its ``score`` (RelMax: the channel's relevance summed over
    space; ActMax: its activation maximum), the ``image`` (uint8 H, W, 3: the crop, or the whole image with the rest
    dimmed), the ``box`` (top, left, bottom, right) of the relevant region in the whole image (None: no positive
    relevance, the whole image is shown) and the channel-conditional ``heatmap`` (H, W) at the model's input size."""
    index: int
    score: float
    image: np.ndarray
    box: tuple[int, int, int, int] | None
    heatmap: np.ndarray


class Top(tuple):
    """What :meth:`Atlas.top` returns: the pair ``(indices, scores)``, plus ``live``, how many samples (of the class,
    with ``cls``) gave the concept a non-zero score, and ``reason``: None when the concept has its full k references
    (or every sample), else why it has fewer or none (e.g. a channel never relevant on the dataset). Samples with a
    score of exactly 0 are never references."""

    live: int
    reason: str | None

    def __new__(cls, indices: np.ndarray, scores: np.ndarray, live: int, reason: str | None):
        pair = super().__new__(cls, (indices, scores))
        pair.live, pair.reason = live, reason
        return pair


class References(list):
    """What :meth:`Atlas.references` returns: a list of :class:`Reference`, with the ``live`` and ``reason`` of
    :class:`Top` (an empty list says why it is empty)."""

    def __init__(self, references, live: int, reason: str | None):
        super().__init__(references)
        self.live, self.reason = live, reason


@dataclass(frozen=True)
class ClassScore:
    """How relevant a concept is for a class: mean ``relevance`` per sample of the class, its ``total`` over them, and
    ``share``, the class's part of the concept's absolute relevance over all classes."""
    index: int
    name: str
    relevance: float
    total: float
    share: float


class Atlas:
    """Reference samples and class statistics of the concepts (channels) of some layers, computed over a dataset.

    Build one with :meth:`build`, open a finished one with :meth:`load`. ``layers`` maps layer names to channel counts;
    ``classes`` names the classes (or numbers them). Queries read only the slices they need from disk.
    """

    def __init__(self, path: str | PathLike, explainer: Explainer, dataset: Dataset | None, manifest: dict[str, Any]):
        self.path, self.explainer, self.dataset, self.manifest = Path(path), explainer, dataset, manifest
        #: built by an earlier conceptscope that kept dead (zero-score) samples and counted no live ones: upgraded as
        #: it is read (zero scores dropped, live counts taken from the stored top-k: lower bounds)
        self.legacy = manifest.get("format") != store.FORMAT
        config = manifest["config"]
        self.layers, self.k, self.modes, self.target = config["layers"], config["k"], tuple(config["modes"]), \
            config["target"]
        self.classes = config["class_names"] or list(range(config["classes"]))

    def __repr__(self) -> str:
        return (f"Atlas({str(self.path)!r}, layers={list(self.layers)}, k={self.k}, modes={self.modes}, "
                f"target={self.target!r}, samples={self.manifest['progress']['samples']})")

    @classmethod
    def build(cls, explainer: Explainer, dataset: Dataset, layers: str | Sequence[str], path: str | PathLike,
              k: int = 32, modes: Sequence[str] = MODES, batch_size: int = 32, target: str = "label",
              checkpoint_every: int = 50, num_workers: int = 0, progress: bool = True) -> Atlas | None:
        """Stream ``dataset`` once and store, for every channel of ``layers``, its top-``k`` samples by relevance
        (RelMax: relevance summed over space, conditioned on each sample's ``target``: ``"label"`` or ``"prediction"``
        for classifiers; for a segmenter ``"region"``, the non-background class with the most predicted pixels over
        its predicted mask (the background's region where nothing else is predicted); for a detector's dense score
        map ``"peak"``, its largest element, the strongest detection's score; class statistics count each sample
        under the class of its target) and by activation (ActMax: the maximum of the layer's output over space, as
        zennit-crp), plus per-class relevance sums and top-``k`` samples per (channel, class) (RelStats).

        All layers come from one forward/backward pass per batch (:meth:`Explainer.attribute`). ``dataset`` items
        are ``(image, label)`` (or bare images for ``target="prediction"``), read in order through a DataLoader with
        ``num_workers``. A checkpoint is committed to ``path`` every ``checkpoint_every`` batches (per process);
        building again with the same arguments resumes an interrupted build, returns a finished one as it is, and
        refuses a path holding an atlas of another model, dataset, composite or settings, damaged atlas files
        (:class:`AtlasDamagedError`) and a directory another process is building into
        (:class:`AtlasBusyError`). Under
        ``torch.distributed`` (e.g. ``torchrun``) each rank explains its share of the batches and rank 0 writes.
        Resumed and sharded builds give the same bits as one uninterrupted run given the same per-batch numerics
        (``batch_size``, device, CPU threads).
        Returns the :class:`Atlas` (None on ranks other than 0).
        """
        manifest = build_atlas(explainer, dataset, layers, path, k, modes, batch_size, target, checkpoint_every,
                               num_workers, progress)
        return None if manifest is None else cls(path, explainer, dataset, manifest)

    @classmethod
    def load(cls, path: str | PathLike, explainer: Explainer, dataset: Dataset | None = None) -> Atlas:
        """Open the finished atlas at ``path`` for ``explainer``'s model and composite (and ``dataset``, which images
        of references come from); raises :class:`AtlasMismatchError` naming what differs if it was built for others,
        and :class:`AtlasDamagedError` naming the file if the manifest or the state file is damaged or incomplete
        (both are checked here, not at the first query). An atlas of an earlier version is upgraded as it loads."""
        manifest = store.read_manifest(path)
        if manifest is None:
            raise FileNotFoundError(f"no atlas at {path} (no {store.MANIFEST})")
        progress = manifest["progress"]
        if not progress["complete"]:
            raise ValueError(f"atlas at {path} is incomplete ({progress['samples_done']} of {progress['samples']} "
                             "samples): run Atlas.build again with the same arguments to finish it")
        identity.check_identity(path, manifest["identity"], identity.of(explainer, dataset))
        store.check_state(path, manifest)
        if manifest["format"] != store.FORMAT:
            warnings.warn(f"the atlas at {path} was built by an earlier conceptscope (format {manifest['format']!r}), "
                          "which stored samples with a score of exactly 0 (a dead concept) as references; they are "
                          "dropped as it is read, and counts of live samples are taken from the stored top-k (lower "
                          "bounds). Build it again into a new directory for exact counts.", stacklevel=2)
        return cls(path, explainer, dataset, manifest)

    # -- raw data ----------------------------------------------------------------------------------------------------
    def top(self, layer: str, channel: int, mode: str = "relevance", n: int | None = None, offset: int = 0,
            cls: ClassKey | None = None) -> Top:
        """Reference indices and scores of a concept, best first: ``(indices int64, scores float32)`` numpy arrays of
        entries ``offset .. offset + n`` (all by default); ``cls`` restricts them to samples of that class (relevance
        only). Only samples with a non-zero score are references: a concept live on fewer than k samples has fewer,
        one never relevant (or active) on the dataset has none, and the returned :class:`Top` says so in ``reason``.
        Reads small slices from disk; no model is run."""
        self._check(layer, channel, mode)
        n, offset = _count(n, "n", allow_none=True), _count(offset, "offset")
        if cls is None:
            key, index = f"top/{mode}/{layer}/", channel
        elif mode != "relevance":
            raise ValueError("per-class references exist for mode='relevance' only")
        else:
            key, index = f"class/{layer}/", (channel, self._class_index(cls))
        values = store.load_slice(self.path, self.manifest, key + "values", index)
        indices = store.load_slice(self.path, self.manifest, key + "indices", index)
        real = torch.isfinite(values) & (values != 0)  # empty slots (-inf, index -1); zeros only in legacy atlases
        values, indices = values[real], indices[real]
        live = len(values) if self.legacy else int(store.load_slice(self.path, self.manifest, key + "live", index))
        stop = len(values) if n is None else min(len(values), offset + n)
        return Top(indices[offset:stop].numpy(), values[offset:stop].numpy(), live,
                   self._reason(layer, channel, mode, cls, live))

    def _reason(self, layer, channel, mode, cls, live):
        """Why concept (layer, channel) has fewer than k references in ``mode`` (None when it has them all)."""
        samples = int(self.class_counts()[self._class_index(cls)]) if cls is not None else \
            self.manifest["progress"]["samples"]
        if live >= min(self.k, samples):
            return None
        what = "relevant" if mode == "relevance" else "active"
        among = f"the {samples} samples"
        if cls is not None:
            among += f" of class {self.classes[self._class_index(cls)]!r}"
        legacy = (" (counted in the stored top-k of an atlas built by an earlier conceptscope: there may be more; "
                  "rebuild for exact counts)" if self.legacy else "")
        if live == 0:
            return (f"channel {channel} of layer {layer!r} is never {what} on this dataset: its {mode} is exactly 0 on "
                    f"all {among}, so it has no references{legacy}")
        return (f"channel {channel} of layer {layer!r} is {what} on only {live} of {among} (non-zero {mode}), so it "
                f"has {live} references, fewer than k={self.k}{legacy}")

    def live_counts(self, layer: str, mode: str = "relevance") -> torch.Tensor:
        """How many samples gave each channel of ``layer`` a non-zero score in ``mode``, int64 ``(channels,)``; 0
        marks a dead concept (never relevant, or never active, on the dataset). For an atlas of an earlier
        conceptscope, counts come from the stored top-k (lower bounds)."""
        self._check(layer, mode=mode)
        if not self.legacy:
            return store.load_slice(self.path, self.manifest, f"top/{mode}/{layer}/live", slice(None))
        values = store.load_slice(self.path, self.manifest, f"top/{mode}/{layer}/values", slice(None))
        return (torch.isfinite(values) & (values != 0)).sum(-1)

    def class_relevance(self, layer: str) -> torch.Tensor:
        """Relevance of each channel summed over each class's samples, float64 ``(channels, classes)``."""
        self._check(layer)
        sums = store.load_slice(self.path, self.manifest, f"class/{layer}/relevance", slice(None))
        return sums.double() / FIXED_POINT

    def class_counts(self) -> torch.Tensor:
        """Number of samples explained for each class (int64 ``(classes,)``)."""
        return store.load_slice(self.path, self.manifest, "class/counts", slice(None))

    # -- references --------------------------------------------------------------------------------------------------
    def references(self, layer: str, channel: int, mode: str = "relevance", n: int = 16, offset: int = 0,
                   crop: bool = True, cls: ClassKey | None = None) -> References:
        """The reference samples of a concept as :class:`Reference` objects, best first (see :meth:`top` for ``n``,
        ``offset``, ``cls``, and why a concept may have fewer or none: :class:`References` carries the ``reason``).
        ``crop=True`` cuts each image to the region where the concept is relevant, from the channel-conditional
        heatmap of that sample for its target class (for ActMax references with no positive relevance, from the
        channel's upsampled activation map); ``crop=False`` keeps the whole image and dims the rest. Costs one
        explanation per reference."""
        if self.dataset is None:
            raise ValueError("references need the dataset the atlas was built on, for the images: "
                             "Atlas.load(path, explainer, dataset=...); top() gives indices and scores without it")
        found = self.top(layer, channel, mode, n, offset, cls)
        indices, scores = found
        return References([self._reference(layer, channel, mode, int(i), float(s), crop)
                           for i, s in zip(indices, scores)], found.live, found.reason)

    def _reference(self, layer, channel, mode, index, score, crop):
        sample = self.sample(index)
        explanation = self.explainer.explain(sample.image, explained_for(self.target, [sample.label]), [layer])
        heatmap = explanation.conditional_heatmaps(layer, [channel])[0].cpu()
        maps = self.explainer.activation_maps(layer, explanation.activations[layer][None], heatmap.shape)
        box = cropping.reference_box(heatmap, maps[0, channel].cpu(), mode)
        picture = sample.picture
        if box is not None:
            box = cropping.scale_box(box, heatmap.shape, picture.shape[:2])
            picture = cropping.crop(picture, box) if crop else cropping.highlight(picture, box)
        return Reference(index, score, picture, box, heatmap.numpy())

    def sample(self, index: int) -> Sample:
        """Item ``index`` of the atlas' dataset as a :class:`Sample`: model input, label and the picture shown for it
        (the dataset's ``raw_image(index)`` where it has one, else the input rescaled)."""
        if self.dataset is None:
            raise ValueError("samples need the dataset the atlas was built on: Atlas.load(path, explainer, "
                             "dataset=...)")
        return load_sample(self.dataset, int(index), self.target)

    # -- class statistics --------------------------------------------------------------------------------------------
    def classes_for(self, layer: str, channel: int, n: int = 5) -> list[ClassScore]:
        """The ``n`` classes this concept is most relevant for, as :class:`ClassScore`, by mean relevance per sample
        (classes on whose samples its relevance is exactly 0 are left out: a dead concept has none)."""
        self._check(layer, channel)
        totals = self.class_relevance(layer)[channel]
        counts = self.class_counts()
        means = totals / counts.clamp(min=1)
        absolute = float(totals.abs().sum()) or float("nan")
        ranked = sorted((c for c in range(len(counts)) if counts[c] > 0 and totals[c] != 0),
                        key=lambda c: (-float(means[c]), c))  # a class the concept is never relevant for is left out
        return [ClassScore(c, self.classes[c], float(means[c]), float(totals[c]), float(totals[c]) / absolute)
                for c in ranked[:n]]

    def concepts_for(self, cls: ClassKey, layers: str | Sequence[str] | None = None,
                     n: int = 10) -> dict[str, list[ConceptScore]]:
        """The ``n`` concepts per layer most relevant for class ``cls`` (index or name): ``{layer: [ConceptScore]}``
        with the mean relevance per sample of the class and its share of the layer's absolute relevance for it."""
        index = self._class_index(cls)
        count = max(1, int(self.class_counts()[index]))
        found = {}
        for layer in [layers] if isinstance(layers, str) else layers or self.layers:
            means = self.class_relevance(layer)[:, index] / count
            absolute = float(means.abs().sum()) or float("nan")
            ranked = sorted(range(len(means)), key=lambda c: (-float(means[c]), c))
            found[layer] = [ConceptScore(layer, c, float(means[c]), float(means[c]) / absolute) for c in ranked[:n]]
        return found

    # -- validation --------------------------------------------------------------------------------------------------
    def _check(self, layer, channel=None, mode=None):
        if not isinstance(layer, str) or layer not in self.layers:
            raise UnknownLayerError(f"the atlas has no layer {layer!r}; its layers: {', '.join(self.layers)}")
        if channel is not None and not (isinstance(channel, (int, np.integer)) and not isinstance(channel, bool)
                                        and 0 <= channel < self.layers[layer]):
            raise ValueError(f"channel {channel!r} is not a channel of layer {layer!r}: give an integer index "
                             f"0..{self.layers[layer] - 1} (it has {self.layers[layer]} channels)")
        if mode is not None and mode not in self.modes:
            raise ValueError(f"the atlas has no mode {mode!r}; its modes: {', '.join(self.modes)}")

    def _class_index(self, cls):
        if isinstance(cls, str) and cls in self.classes:
            return self.classes.index(cls)
        if isinstance(cls, (int, np.integer)) and not isinstance(cls, bool) and 0 <= cls < len(self.classes):
            return int(cls)
        raise ValueError(f"unknown class {cls!r}; classes: {', '.join(map(str, self.classes))}")


def _count(value, name, allow_none=False):
    """``value`` as a non-negative int (None passes where allowed); booleans, floats and negatives are errors."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer{' or None (all)' if allow_none else ''}, got "
                         f"{value!r}")
    return int(value)
