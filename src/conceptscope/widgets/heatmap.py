"""HeatmapView: an image with its relevance heatmap overlaid; click a pixel, drag a region, switch maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ..render import COLORMAPS, OVERLAYS, check_overlay, check_percent, contour_png, decode_png, encode_png, heatmap_png
from ..render.colormap import colour_table
from ._arrays import as_image, as_relevance
from ._protocol import ProtocolError, Real, RequestWidget, check_number, checked, request
from .controller import check_box


def _scale(relevance: np.ndarray) -> dict[str, float]:
    return {"max": float(np.abs(relevance).max(initial=0.0)), "sum": float(relevance.sum())}


def colorbar_png(colormap: str) -> bytes:
    """The colour table of ``colormap`` from the negative to the positive end, as a 1-pixel-high PNG."""
    return encode_png(colour_table(colormap)[None, :, :3])


class HeatmapView(RequestWidget):
    """Show ``image`` (uint8 H x W x 3) with ``relevance`` (float H x W) overlaid as a heatmap.

    The colormap is diverging and centred at zero (symmetric max-abs scaling); ``opacity`` and ``colormap`` are
    synced both ways with the view's controls. Clicking a pixel asks Python for its relevance in the map shown (and
    calls the ``on("pixel", callback)`` callbacks with x, y — not when the view asks again for the marked pixel
    after the map changed, to refresh its readout); dragging a box sets ``region`` ([x0, y0, x1, y1] in image
    pixels, end exclusive; [] for none) and calls the ``on("region", callback)`` callbacks with it on every change.
    :meth:`set_concept` adds a concept's conditional heatmap, and ``show`` ("heatmap" or "concept", toggled in the
    view) picks the map drawn. ``overlay`` (switched in the view) is how it is drawn: "overlay" (over the image, as
    opaque as |R| is large), "side-by-side" (the image and the heatmap next to each other; clicks and boxes work on
    both) or "contour" (the image in its own colours with the outline of its ``contour_percent`` % most positively
    relevant pixels, in the colormap's positive-end colour: red for "bwr").
    """

    _view = "heatmap"
    _view_sets = frozenset({"show", "opacity", "colormap", "region", "overlay"})
    _view_local = frozenset({"show", "opacity", "overlay"})

    image_png = traitlets.Bytes(help="The image as PNG bytes (sent as a binary buffer).").tag(sync=True)
    heatmap_png = traitlets.Bytes(help="The colormapped relevance as RGBA PNG bytes.").tag(sync=True)
    concept_png = traitlets.Bytes(help="The colormapped conditional heatmap of the concept (b'' if none).").tag(
        sync=True)
    concept_label = traitlets.Unicode(help="Which concept concept_png shows.").tag(sync=True)
    show = traitlets.Enum(("heatmap", "concept"), default_value="heatmap").tag(sync=True)
    region = traitlets.List(traitlets.Int(), help="The drawn box [x0, y0, x1, y1], or [].").tag(sync=True)
    colormap = traitlets.Enum(COLORMAPS, default_value=COLORMAPS[0]).tag(sync=True)
    colormaps = traitlets.List(traitlets.Unicode(), default_value=list(COLORMAPS), read_only=True).tag(sync=True)
    opacity = Real(0.6, low=0, high=1, help="Opacity of the heatmap over the image.").tag(sync=True)
    colorbar_png = traitlets.Bytes(help="The colormap from -max |R| to +max |R| as a 1-pixel-high PNG.").tag(sync=True)
    scales = traitlets.Dict(help="{heatmap|concept: {max: max |R|, sum: ΣR}} of the maps, for the colour bar.").tag(
        sync=True)
    logit = traitlets.Float(None, allow_none=True, help="What the heatmap's relevance started from (the target "
                            "logit), to show its share; None if unknown.").tag(sync=True)
    overlay = traitlets.Unicode(OVERLAYS[0], help=f"How the map is drawn: one of {', '.join(OVERLAYS)}.").tag(
        sync=True)
    overlays = traitlets.List(traitlets.Unicode(), default_value=list(OVERLAYS), read_only=True).tag(sync=True)
    contour_percent = Real(10.0, help="The share of pixels (%, in (0, 100]) that the contour display outlines.").tag(
        sync=True)
    contour_png = traitlets.Bytes(help="The heatmap's contour_percent % most relevant pixels (RGBA PNG, opaque in "
                                       "the outline colour).").tag(sync=True)
    concept_contour_png = traitlets.Bytes(help="The same for the concept's map (b'' if none).").tag(sync=True)
    relevance = traitlets.Instance(np.ndarray, help="The relevance map (H, W) behind heatmap_png.")
    concept_relevance = traitlets.Instance(np.ndarray, allow_none=True, help="The map behind concept_png.")

    def __init__(self, image: Any, relevance: Any, colormap: str = "bwr", opacity: float = 0.6,
                 overlay: str = "overlay", contour_percent: float = 10.0, **kwargs: Any):
        img = as_image(image)
        rel = as_relevance(relevance, img.shape[:2])
        if colormap not in COLORMAPS:
            raise ValueError(f"colormap must be one of {', '.join(COLORMAPS)}; got {colormap!r}")
        opacity = check_number("opacity", opacity, 0, 1)
        check_overlay(overlay)
        contour_percent = check_percent(contour_percent)
        self._shape = img.shape[:2]
        self._asked: tuple[int, int, bool] | None = None  # the last pixel asked for, and whether the map changed since
        super().__init__(image_png=encode_png(img), colormap=colormap, opacity=opacity, overlay=overlay,
                         contour_percent=contour_percent, relevance=rel, colorbar_png=colorbar_png(colormap),
                         **kwargs)

    def figure(self, ax: Any = None, logit: float | None = None) -> Any:
        """A matplotlib figure of the map shown now (the heatmap, or the concept's conditional heatmap) over the
        image, with its colour bar (the share of ``logit`` when given)."""
        from .. import plot

        concept = self.show == "concept" and self.concept_relevance is not None
        relevance = self.concept_relevance if concept else self.relevance
        title = self.concept_label if concept else "relevance of the target"
        return plot.heatmap(decode_png(self.image_png), relevance, ax, cmap=self.colormap, title=title, logit=logit,
                            overlay=self.overlay, contour_percent=self.contour_percent)

    # -- state changes from Python (whole updates, also used as results of background work) ---------
    def heatmap_state(self, relevance: Any, image: Any = None, logit: float | None = None) -> dict[str, Any]:
        """Trait values for a new relevance map (and image, of the same size; ``logit``: what its relevance started
        from, for the colour bar's share); nothing is changed yet."""
        state: dict[str, Any] = {"logit": None if logit is None else float(logit)}
        if image is not None:
            img = as_image(image)
            if img.shape[:2] != self._shape:
                raise ValueError(f"the new image must be {self._shape[1]}x{self._shape[0]} like the first; "
                                 f"got {img.shape[1]}x{img.shape[0]}")
            state["image_png"] = encode_png(img)
        state["relevance"] = as_relevance(relevance, self._shape)
        return state

    def concept_state(self, relevance: Any, label: str) -> dict[str, Any]:
        """Trait values that show ``relevance`` as the conditional heatmap of concept ``label``."""
        return {"concept_relevance": as_relevance(relevance, self._shape), "concept_label": label, "show": "concept"}

    def set_heatmap(self, relevance: Any) -> None:
        """Show a new relevance map of the same size as the image; the view redraws."""
        self._apply(self.heatmap_state(relevance))

    def set_concept(self, relevance: Any, label: str) -> None:
        """Show ``relevance`` as the conditional heatmap of concept ``label`` (and switch to it)."""
        self._apply(self.concept_state(relevance, label))

    def _apply(self, state: dict[str, Any]) -> None:
        with self._lock, self.hold_sync():
            for name, value in state.items():
                setattr(self, name, value)

    def relevance_at(self, x: int, y: int) -> float:
        """Relevance of the image pixel in column ``x``, row ``y`` in the map shown."""
        shown = self.concept_relevance if self.show == "concept" and self.concept_relevance is not None \
            else self.relevance
        return float(shown[y, x])

    @traitlets.observe("heatmap_png")
    def _map_changed(self, _change: dict) -> None:
        if self._asked is not None:
            self._asked = (*self._asked[:2], True)  # the next request for that pixel refreshes its readout

    @traitlets.observe("relevance")
    def _encode_heatmap(self, change: dict) -> None:
        with self._lock, self.hold_sync():
            self.heatmap_png = heatmap_png(change["new"], self.colormap, alpha=True)
            self.contour_png = contour_png(change["new"], self.contour_percent, self.colormap)
            self.scales = {**self.scales, "heatmap": _scale(change["new"])}

    @traitlets.observe("concept_relevance")
    def _encode_concept(self, change: dict) -> None:
        with self._lock, self.hold_sync():
            self.concept_png = b"" if change["new"] is None else heatmap_png(change["new"], self.colormap, alpha=True)
            self.concept_contour_png = b"" if change["new"] is None else contour_png(
                change["new"], self.contour_percent, self.colormap)
            self.scales = {**self.scales, "concept": None if change["new"] is None else _scale(change["new"])}

    # -- checks of the synced state (from Python or the view) -----------------------------------------
    @traitlets.validate("region")
    def _valid_region(self, proposal: dict) -> list[int]:
        return checked(lambda box: check_box(box, self._shape))(proposal["value"])

    @traitlets.validate("show")
    def _valid_show(self, proposal: dict) -> str:
        if proposal["value"] == "concept" and self.concept_relevance is None:
            raise traitlets.TraitError("no concept heatmap to show yet: select a concept first")
        return proposal["value"]

    @traitlets.observe("region")
    def _region_changed(self, change: dict) -> None:
        self._emit("region", list(change["new"]))

    @traitlets.validate("overlay")
    def _valid_overlay(self, proposal: dict) -> str:
        return checked(check_overlay)(proposal["value"])

    @traitlets.validate("contour_percent")
    def _valid_contour_percent(self, proposal: dict) -> float:
        return checked(check_percent)(proposal["value"])

    @traitlets.observe("colormap")
    def _recolour(self, change: dict) -> None:
        with self._lock, self.hold_sync():
            self.colorbar_png = colorbar_png(change["new"])
            self.heatmap_png = heatmap_png(self.relevance, change["new"], alpha=True)
            if self.concept_relevance is not None:
                self.concept_png = heatmap_png(self.concept_relevance, change["new"], alpha=True)
            self._outline()

    @traitlets.observe("contour_percent")
    def _outline(self, _change: dict | None = None) -> None:
        """The contour masks again (a new share of pixels or colormap)."""
        if self.relevance is None:  # contour_percent set before the first map (in __init__)
            return
        with self._lock, self.hold_sync():
            self.contour_png = contour_png(self.relevance, self.contour_percent, self.colormap)
            if self.concept_relevance is not None:
                self.concept_contour_png = contour_png(self.concept_relevance, self.contour_percent, self.colormap)

    # -- requests from the view ---------------------------------------------------------------------
    @request("pixel", x=int, y=int)
    def _on_pixel(self, x: int, y: int) -> dict:
        height, width = self._shape
        if not (0 <= x < width and 0 <= y < height):
            raise ProtocolError(f"pixel ({x}, {y}) is outside the {width}x{height} image")
        value = self.relevance_at(x, y)
        # the view asks again for the marked pixel whenever the map changes, to refresh its readout: no click
        refresh, self._asked = self._asked == (x, y, True), (x, y, False)
        if not refresh:
            self._emit("pixel", x, y)
        return {"type": "pixel_result", "x": x, "y": y, "value": value}

    @request("region", box=list)
    def _on_region(self, box: list) -> dict:
        try:
            box = check_box(box, self._shape)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(str(exc)) from None
        self.region = box
        return {"type": "region_result", "box": list(box)}
