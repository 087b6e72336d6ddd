"""NeuronGallery: the reference samples of a concept from an atlas (RelMax or ActMax), paged."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import traitlets

from ..engine.arguments import count
from ..render import encode_png
from ._protocol import Count, ProtocolError, RequestWidget, request

if TYPE_CHECKING:
    from ..atlas import Atlas

MODES = ("relevance", "activation")


class NeuronGallery(RequestWidget):
    """Reference images of concept (``layer``, ``channel``) from ``atlas`` (see :meth:`show`).

    ``mode`` is "relevance" (RelMax) or "activation" (ActMax); ``crop`` cuts each reference to where
    the concept is relevant, else the whole image is shown with the rest dimmed. Clicking a
    reference sets ``picked`` to its dataset index and calls the ``on("pick", callback)`` callbacks
    with it.
    """

    _view = "gallery"

    concept = traitlets.Dict(help="The concept shown {layer, channel}, or {}.").tag(sync=True)
    mode = traitlets.Enum(MODES, default_value="relevance").tag(sync=True)
    crop = traitlets.Bool(True).tag(sync=True)
    page = Count(0, minimum=0, help="The page shown (from 0).").tag(sync=True)
    pages = traitlets.Int(0, help="How many pages there are.").tag(sync=True)
    page_size = Count(8, help="References per page.").tag(sync=True)
    references = traitlets.List(traitlets.Dict(), help="[{index, score, image (PNG)}] of the page.").tag(sync=True)
    classes = traitlets.List(traitlets.Dict(),
                             help="[{name, share}]: the classes the concept is most relevant for.").tag(sync=True)
    note = traitlets.Unicode(help="Why nothing (or less than k) is shown: a layer the atlas lacks, a concept never "
                                  "relevant on this dataset, one relevant on fewer samples than k.").tag(sync=True)
    picked = traitlets.Int(-1, help="Dataset index of the last reference clicked (-1: none yet).")

    def __init__(self, atlas: Atlas, layer: str | None = None, channel: int | None = None, *,
                 mode: str = "relevance", crop: bool = True, page_size: int = 8, cache_size: int = 64, **kwargs: Any):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.atlas = atlas
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = count("cache_size", cache_size, minimum=0)
        super().__init__(mode=mode, crop=crop, page_size=page_size, **kwargs)
        if layer is not None and channel is not None:
            self.show(layer, channel)

    def show(self, layer: str, channel: int, delay: float = 0.0, label: str = "") -> None:
        """Show the references of concept (``layer``, ``channel``, named ``label`` when given) from the first page
        (after ``delay`` s)."""
        with self._lock:
            concept = {"layer": layer, "channel": int(channel), **({"label": label} if label else {})}
            self.push("references", lambda: {"concept": concept,
                                              **self._page(layer, int(channel), self.mode, self.crop, 0)},
                      delay=delay)

    def _page(self, layer: str, channel: int, mode: str, crop: bool, page: int) -> dict[str, Any]:
        """Trait values for one page of references (cached per concept, mode, crop and page)."""
        if layer not in self.atlas.layers:
            return {"references": [], "classes": [], "page": 0, "pages": 0, "mode": mode, "crop": crop,
                    "note": f"the atlas has no references for layer {layer!r} (its layers: "
                            f"{', '.join(self.atlas.layers)})"}
        key = (layer, channel, mode, crop, page, self.page_size)
        state = self._cache.get(key)
        if state is None:
            count = len(self.atlas.top(layer, channel, mode)[0])
            refs = self.atlas.references(layer, channel, mode, n=self.page_size, offset=page * self.page_size,
                                         crop=crop)
            classes = self.atlas.classes_for(layer, channel, n=3)
            state = {
                "references": [{"index": r.index, "score": r.score, "image": encode_png(r.image)} for r in refs],
                "classes": [{"name": str(c.name), "share": c.share} for c in classes],
                "page": page, "pages": -(-count // self.page_size), "mode": mode, "crop": crop,
                "note": refs.reason or "",  # e.g. a dead concept: "... is never relevant on this dataset ..."
            }
            self._cache[key] = state
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return state

    def figure(self, figure: Any = None, labels: Any = None) -> Any:
        """A matplotlib figure of the page of references shown now (``figure``: a (sub)figure to draw into)."""
        from .. import plot

        if not self.concept:
            return plot.message("no concept selected: click a concept first")
        layer, channel = self.concept["layer"], self.concept["channel"]
        items = [] if self.note else self.atlas.references(layer, channel, self.mode, n=self.page_size,
                                                           offset=self.page * self.page_size, crop=self.crop)
        name = {"relevance": "RelMax", "activation": "ActMax"}.get(self.mode, self.mode)
        labels = labels or {layer: {channel: self.concept.get("label")}}
        return plot.references(items, title=f"{plot.concept_name(layer, channel, labels)}: {name} references",
                               empty=self.note or "no references", figure=figure)

    @traitlets.validate("page")
    def _valid_page(self, proposal: dict) -> int:
        page = proposal["value"]
        if self.pages and page >= self.pages:
            raise traitlets.TraitError(f"page {page} does not exist (pages: 0..{self.pages - 1})")
        return page

    @request("query", work="references", mode=str, crop=bool, page=int)
    def _on_query(self, mode: str, crop: bool, page: int) -> dict[str, Any]:
        if not self.concept:
            raise ProtocolError("no concept is shown yet")
        if mode not in MODES:
            raise ProtocolError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if page < 0 or (self.pages and page >= self.pages):
            raise ProtocolError(f"page {page} does not exist (pages: 0..{max(self.pages - 1, 0)})")
        return self._page(self.concept["layer"], self.concept["channel"], mode, crop, page)

    @request("pick", index=int)
    def _on_pick(self, index: int) -> dict[str, Any]:
        if index not in {r["index"] for r in self.references}:
            raise ProtocolError(f"dataset index {index} is not a reference on this page")
        self.picked = index
        self._emit("pick", index)
        return {"type": "picked", "index": index}
