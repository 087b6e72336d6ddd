"""The explorer: the views wired together around one explained input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np

from .. import plot
from ..atlas import identity
from ..engine.segments import segment_at
from ..engine.targets import Output, Region, initial_relevance, target_class
from ..errors import AtlasMismatchError
from ._worker import Worker
from .concepts import ConceptList
from .controller import Controller, ModelInput, Picture, Segments
from .gallery import NeuronGallery
from .heatmap import HeatmapView
from .semantic_search import SemanticSearch
from .snapshot import save_html
from .target import TargetView
from .tree import CompositionTree

if TYPE_CHECKING:
    from ..atlas import Atlas
    from ..engine import Explainer
    from ..semantics import SemanticLens

# Work for the views around the one the user looks at (tree, gallery) waits this long, so that the
# result asked for reaches the screen first (on 2 busy CPU cores this took the shapes world's
# click-to-heatmap p50 from ~160 ms to ~75 ms, benchmarks/widgets.py).
SECONDARY_DELAY = 0.1


def _concept_names(found: dict) -> dict:
    """``{layer: {channel: text or None}}`` from the lens' labels (``{(layer, channel): ConceptLabel dict}``); dead
    concepts say so."""
    labels: dict = {}
    for (layer, channel), label in found.items():
        text = "never relevant on this dataset" if label["status"] == "no references" else label["label"]
        labels.setdefault(layer, {})[channel] = text
    return labels


class Explorer(ipywidgets.VBox):
    """Target selector and prediction, heatmap (with regions), concept list, composition tree,
    (with an atlas) the neuron gallery and (with a SemanticLens ``lens``) the semantic search (labels
    from ``vocabulary``), wired so that a selection in one view updates the others. Concepts are named by
    ``labels`` (``{layer: {channel: text}}``) or, with a lens and a vocabulary, by the lens' labels (computed once)
    in the concept list, the tree, the gallery, the heatmap's caption and the figures; the others say "unlabelled".
    ``scale`` enlarges every view (e.g. 1.5 for a projector); the row of views wraps in a narrow column.

    On a segmenter or a detector (a dense output) the explained target is one predicted segment or detection (see
    :class:`Controller`; ``segments=`` gives a detector's boxes, e.g.
    :func:`conceptscope.world.detection.detection_segments`): the target view lists them, and a click on one there or
    on it in the heatmap explains it alone — a segment is one connected component of a predicted class, explained by
    the class's output summed over it (``Region(cls, its mask)``); a detection by its score (an ``Output``). The
    class bars explain a class over its whole predicted region. Concepts, tree and gallery then follow that target.

    All views share one :class:`Controller` (input, target, cached results) and one worker thread.
    Attributes: ``controller``, ``target``, ``heatmap``, ``concepts``, ``tree``, ``gallery`` (None
    without an atlas), ``search`` (None without a lens).
    """

    def __init__(self, explainer: Explainer, image: ModelInput, *, atlas: Atlas | None = None,
                 target: int | None = None, classes: Sequence[str] | None = None, picture: Picture | None = None,
                 layer: str | None = None, k: int = 8, lens: SemanticLens | None = None,
                 vocabulary: Sequence[str] | None = None, labels: dict | None = None, scale: float = 1.0,
                 segments: Segments | None = None, **kwargs: Any):
        if lens is not None and atlas is not None and lens.atlas is not atlas \
                and lens.atlas.manifest["identity"] != atlas.manifest["identity"]:
            raise AtlasMismatchError(f"the lens was made from the atlas at {lens.atlas.path}, which was built for "
                                     f"another model, composite or dataset than the atlas at {atlas.path}")
        if atlas is None and lens is not None:
            atlas = lens.atlas
        if classes is None and atlas is not None:
            classes = atlas.classes
        self._worker = worker = Worker("conceptscope-explorer")
        self.secondary_delay = SECONDARY_DELAY  # 0 where nobody watches (the twin a snapshot precomputes with)
        self.search = None if lens is None else SemanticSearch(lens, vocabulary=vocabulary, worker=worker)
        if labels is None and self.search is not None and self.search.vocabulary:
            labels = _concept_names(self.search.labels_for(self.search.vocabulary))  # kept for the search's hits
        self.controller = controller = Controller(explainer, image, target, picture, classes, labels=labels,
                                                  segments=segments)
        if atlas is not None:  # its references must be of this explainer's model and composite
            identity.check_identity(atlas.path, atlas.manifest["identity"], identity.of(explainer))
        self._path: list[list[Any]] = []  # the concept path whose heatmap is shown
        controller.subscribe(self._input_changed)  # first, so the heatmap is recomputed before the rest
        self.heatmap = HeatmapView(controller.subject.picture, self._full_heatmap(), worker=worker, logit=self._start())
        self.target = TargetView(controller=controller, worker=worker)
        self.concepts = ConceptList(controller=controller, layer=layer, k=k, worker=worker)
        self.tree = CompositionTree(controller=controller, worker=worker)
        self.gallery = None if atlas is None else NeuronGallery(atlas, worker=worker)
        # every view reports what the user did as an event; the explorer alone decides what the others show
        self.concepts.on("select", self.select)
        self.tree.on("select", self._show)
        self.heatmap.on("region", self.concepts.set_region)
        self.heatmap.on("pixel", self._pixel)
        if self.gallery is not None:
            self.gallery.on("pick", self.load)
        if self.search is not None:
            self.search.on("select", self.select)
        for view in self.views:
            view.scale = scale  # e.g. 1.5 on a projector
            view.layout.flex = "0 0 auto"  # keep each view's own size; the row wraps instead
        self.tree.layout.max_width = "100%"
        row = ipywidgets.HBox([self.heatmap, self.concepts] + ([self.gallery] if self.gallery is not None else []),
                              layout=ipywidgets.Layout(flex_flow="row wrap", grid_gap="8px 24px"))
        super().__init__([self.target, row, self.tree] + ([self.search] if self.search is not None else []), **kwargs)

    @property
    def views(self) -> list[Any]:
        """The view widgets of the explorer."""
        return [v for v in (self.target, self.heatmap, self.concepts, self.tree, self.gallery, self.search)
                if v is not None]

    @property
    def path(self) -> list[list[Any]]:
        """The concept path whose conditional heatmap is shown ([[layer, channel], ...] from a tree's root; [])."""
        return [list(step) for step in self._path]

    @property
    def worker(self) -> Worker:
        """The work thread (and lock) that all the explorer's views share."""
        return self._worker

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the pending work of every view is done (False on timeout)."""
        return self._worker.wait_idle(timeout)

    # -- changes of the input --------------------------------------------------------------------------
    def load(self, index: int) -> None:
        """Explain item ``index`` of the atlas' dataset (a clicked reference) instead of the current input."""
        sample = self.gallery.atlas.sample(index)
        with self._worker.lock:
            self.heatmap.region = []  # a region drawn on the old image means nothing on the new one
            self.controller.set_input(sample.image, sample.picture)

    def set_target(self, target: int | Region | Output | None, versus: int | None = None) -> None:
        """Explain the class ``target`` (None: the predicted class), or ``target`` rather than ``versus``; on a dense
        output also a :class:`Region` or an :class:`Output`."""
        with self._worker.lock:
            self.controller.set_target(target, versus)

    def select_segment(self, index: int) -> None:
        """Explain segment ``index`` of the input's predicted segments or detections (``target.segments``)."""
        with self._worker.lock:
            self.controller.set_segment(index)

    def _pixel(self, x: int, y: int) -> None:
        """A click on the heatmap: on a dense output, explain the segment (or detection) under it, if any."""
        index = segment_at(self.controller.subject.segments, x, y)
        if index is not None and index != self.controller.segment:
            self.controller.set_segment(index)

    def _full_heatmap(self) -> np.ndarray:
        return self.controller.explanation().heatmap.detach().float().cpu().numpy()

    def _start(self) -> float:
        """What the heatmap's relevance started from (the target's logit, a contrast's logit difference, ...)."""
        explanation = self.controller.explanation()
        return float(initial_relevance(explanation.logits[None].detach().double(), [explanation.target]).sum())

    def _input_changed(self) -> None:
        """New input or target: new heatmap; the shown concept keeps its root (the tree resets to it)."""
        picture = self.controller.subject.picture
        self.heatmap.push("heatmap", lambda: self.heatmap.heatmap_state(self._full_heatmap(), picture, self._start()))
        if self._path:
            self._show(self._path[:1], force=True)

    # -- selections ---------------------------------------------------------------------------------------
    def select(self, layer: str, channel: int) -> None:
        """Show concept (``layer``, ``channel``): its conditional heatmap on the current input, its composition
        tree and its gallery (what a click in the concept list or the semantic search does)."""
        with self._worker.lock:
            self._show([[layer, int(channel)]])
            self.tree.set_root(layer, channel, delay=self.secondary_delay)

    def _show(self, path: list[list[Any]], force: bool = False) -> None:
        """Show the conditional heatmap of ``path`` and the gallery of its last concept."""
        if path == self._path and not force:
            return
        previous, self._path = self._path, path
        controller, heatmap = self.controller, self.heatmap
        name = " → ".join(plot.concept_name(layer, channel, controller.labels) for layer, channel in path)
        heatmap.push("concept", lambda: heatmap.concept_state(controller.path_heatmap(path), name))
        if self.gallery is not None and (not previous or previous[-1] != path[-1]):
            self.gallery.show(*path[-1], delay=self.secondary_delay, label=controller.label(*path[-1]))

    # -- export -------------------------------------------------------------------------------------------
    def figure(self, labels: Any = None) -> Any:
        """A matplotlib figure of what the explorer shows now, for a paper (``savefig("x.pdf")`` gives vector output):
        the image with the heatmap and its colour bar, the shown concept's conditional heatmap, the top concepts with
        their shares, the concept's references and its composition tree. ``labels``: ``{layer: {channel: text}}``."""
        import matplotlib.pyplot as plt

        labels = self.controller.labels if labels is None else labels

        if not self.wait(120):
            raise TimeoutError("the explorer is still computing; call figure() again when it is done")
        controller, explanation = self.controller, self.controller.explanation()
        picture, target = controller.subject.picture, explanation.target
        logit = self._start()
        figure = plt.figure(figsize=(12, 10), layout="constrained")
        top, middle, bottom = figure.subfigures(3, 1, height_ratios=[1.3, 0.8, 1.2])
        axes = top.subplots(1, 3, width_ratios=[1, 1, 1.3])
        explained = target_class(target) if isinstance(target, (int, Region, Output)) else None
        drawn = {"cmap": self.heatmap.colormap, "overlay": self.heatmap.overlay,  # as the heatmap view draws it
                 "contour_percent": self.heatmap.contour_percent}
        plot.heatmap(picture, self._full_heatmap(), axes[0], title=f"explaining {self.target.classes[explained]!r}"
                     if explained is not None and self.target.classes else "relevance of the target", logit=logit,
                     **drawn)
        if self._path:
            names = " → ".join(plot.concept_name(layer, channel, labels) for layer, channel in self._path)
            plot.heatmap(picture, controller.path_heatmap(self._path), axes[1], title=names, **drawn)
        else:
            plot.message("no concept selected", axes[1])
        scores = controller.top_concepts(self.concepts.layer, self.concepts.k, self.concepts.region or None)
        plot.concepts(scores, axes[2], labels=labels)
        if self.gallery is not None and self._path:
            self.gallery.figure(middle, labels)
        else:
            plot.message("no references: open the explorer with an atlas and select a concept", middle.subplots())
        self.tree.figure(bottom.subplots(), labels, depth=1)
        return figure

    def save_html(self, path: Any, **options: Any) -> Any:
        """Write a standalone HTML snapshot of the explorer as it looks now (no kernel or network needed); returns
        the path. ``options``: ``title``, ``theme`` and ``precompute`` (the clicks that work in it) of
        :func:`~conceptscope.widgets.save_html`."""
        return save_html(self, path, **options)
