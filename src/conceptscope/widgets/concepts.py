"""ConceptList: the most relevant concepts of a layer for the explained target, with thumbnails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets
from PIL import Image

from ..atlas.crop import crop, relevant_box
from ..errors import UnknownLayerError
from ..render import COLORMAPS, encode_png, overlay, relevance_to_rgba
from ._protocol import Count, ProtocolError, RequestWidget, checked, request
from .controller import Controller, ModelInput, Picture, check_box

if TYPE_CHECKING:
    from ..engine import Explainer

THUMBNAIL = 64  # longest side of a concept's thumbnail, in pixels


def thumbnail(picture: np.ndarray, relevance: np.ndarray, colormap: str = "bwr", size: int = THUMBNAIL) -> bytes:
    """PNG of a concept on the image: ``relevance`` (its conditional heatmap) over ``picture``, as opaque as it is
    strong, cropped to where half its positive relevance lies (the whole image if it has none), scaled to ``size``."""
    shown = overlay(picture, relevance_to_rgba(relevance, colormap, alpha=True), 0.8)
    box = relevant_box(relevance)
    part = Image.fromarray(shown if box is None else crop(shown, box))
    scale = size / max(part.size)
    return encode_png(np.asarray(part.resize((max(1, round(part.width * scale)), max(1, round(part.height * scale))),
                                             Image.Resampling.NEAREST)))


class ConceptList(RequestWidget):
    """The top ``k`` concepts of ``layer`` (a dropdown of the model's layers) with their relevance shares
    (bars) and a thumbnail of each: its conditional heatmap on the image, cropped to where it lies;
    clicking one sets ``selected`` and calls the ``on("select", callback)`` callbacks with its layer and channel
    (also when it was selected already).

    Give ``explainer`` and ``image`` (a model input, C x H x W), or the ``controller`` of an explorer.
    With ``region`` ([x0, y0, x1, y1]) the ranking counts only relevance inside that box.
    """

    _view = "concepts"
    _view_sets = frozenset({"k", "region"})

    layers = traitlets.List(traitlets.Unicode(), help="The layers to choose from.").tag(sync=True)
    layer = traitlets.Unicode(help="The layer whose concepts are listed.").tag(sync=True)
    k = Count(8, help="How many concepts are listed.").tag(sync=True)
    concepts = traitlets.List(traitlets.Dict(),
                              help="[{layer, channel, relevance, share, thumbnail (PNG)}]").tag(sync=True)
    selected = traitlets.Dict(help="The selected concept {layer, channel}, or {}.").tag(sync=True)
    region = traitlets.List(traitlets.Int(), help="The box the ranking is restricted to, or [].").tag(sync=True)
    colormap = traitlets.Enum(COLORMAPS, default_value=COLORMAPS[0], help="Colormap of the thumbnails.")

    def __init__(self, explainer: Explainer | None = None, image: ModelInput | None = None, *,
                 target: int | None = None, layer: str | None = None, k: int = 8, picture: Picture | None = None,
                 classes: Sequence[str] | None = None, controller: Controller | None = None, **kwargs: Any):
        self.controller = controller or Controller(explainer, image, target, picture, classes)
        layers = list(self.controller.explainer.layers)
        if layer is not None and layer not in layers:
            raise UnknownLayerError(f"unknown layer {layer!r}; layers: {', '.join(layers)}")
        super().__init__(layers=layers, layer=layer or "", k=k, **kwargs)
        self.controller.subscribe(self.refresh)
        self.observe(lambda _change: self.refresh(), names=["k", "region"])
        self.refresh()

    def refresh(self) -> None:
        """Rank the concepts again (new input, target, region or k)."""
        self.push("concepts", lambda: self._ranking(self.layer or None))

    def set_region(self, box: list[int] | None) -> None:
        """Rank by the relevance inside ``box`` ([x0, y0, x1, y1]; None or [] for the whole image)."""
        with self._lock:
            self.region = [] if box is None else box

    # -- checks of the synced state (from Python or the view) -----------------------------------------
    @traitlets.validate("region")
    def _valid_region(self, proposal: dict) -> list[int]:
        shape = self.controller.subject.picture.shape[:2]
        return checked(lambda box: check_box(box, shape))(proposal["value"])

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict) -> str:
        if proposal["value"] and self.layers and proposal["value"] not in self.layers:
            raise traitlets.TraitError(f"unknown layer {proposal['value']!r}; layers: {', '.join(self.layers)}")
        return proposal["value"]

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict) -> dict:
        value = proposal["value"]
        if value:
            if set(value) != {"layer", "channel"}:
                raise traitlets.TraitError(f"selected must be {{}} or {{layer, channel}}; got {value!r}")
            checked(lambda v: self._check_concept(v["layer"], v["channel"]))(value)
        return value

    def _check_concept(self, layer: Any, channel: Any) -> None:
        if layer not in self.layers:
            raise ValueError(f"unknown layer {layer!r}; layers: {', '.join(self.layers)}")
        channels = self.controller.explainer.layers[layer]
        if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < channels:
            raise ValueError(f"channel {channel!r} is out of range for layer {layer!r} (0..{channels - 1})")

    def _ranking(self, layer: str | None) -> dict[str, Any]:
        controller = self.controller
        layer = layer or controller.default_layer()
        scores = controller.top_concepts(layer, self.k, self.region or None)
        maps = controller.conditional(layer, [s.channel for s in scores]) if scores else []
        picture = controller.subject.picture
        concepts = [
            {"layer": s.layer, "channel": s.channel, "relevance": s.relevance, "share": s.share,
             "label": controller.label(s.layer, s.channel), "thumbnail": thumbnail(picture, m, self.colormap)}
            for s, m in zip(scores, maps)
        ]
        return {"layer": layer, "concepts": concepts}

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise ProtocolError(f"unknown layer {layer!r}; layers: {', '.join(self.layers)}")

    @request("layer", work="concepts", layer=str)
    def _on_layer(self, layer: str) -> dict[str, Any]:
        self._check_layer(layer)
        return self._ranking(layer)

    @request("select", layer=str, channel=int)
    def _on_select(self, layer: str, channel: int) -> dict[str, Any]:
        try:
            self._check_concept(layer, channel)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        self.selected = {"layer": layer, "channel": channel}
        self._emit("select", layer, channel)
        return {"type": "selected", "layer": layer, "channel": channel}
