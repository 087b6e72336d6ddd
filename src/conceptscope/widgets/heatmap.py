"""HeatmapView: an image with its relevance heatmap overlaid; click a pixel to read its relevance."""

from __future__ import annotations

from typing import Any

import traitlets

from ..render import COLORMAPS, encode_png, relevance_to_rgba
from ._arrays import as_image, as_relevance
from ._protocol import ProtocolError, RequestWidget, request


class HeatmapView(RequestWidget):
    """Show ``image`` (uint8 H x W x 3) with ``relevance`` (float H x W) overlaid as a heatmap.

    The colormap is diverging and centred at zero (symmetric max-abs scaling); ``opacity`` and
    ``colormap`` are synced both ways with the view's controls. Clicking a pixel asks Python
    for its relevance; the answer is shown in the view and kept in ``last_result``.
    """

    _view = "heatmap"

    image_png = traitlets.Bytes(help="The image as PNG bytes (sent as a binary buffer).").tag(sync=True)
    heatmap_png = traitlets.Bytes(help="The colormapped relevance as RGBA PNG bytes.").tag(sync=True)
    colormap = traitlets.Enum(COLORMAPS, default_value=COLORMAPS[0]).tag(sync=True)
    colormaps = traitlets.List(traitlets.Unicode(), default_value=list(COLORMAPS), read_only=True).tag(sync=True)
    opacity = traitlets.Float(0.6, min=0.0, max=1.0, help="Opacity of the heatmap over the image.").tag(sync=True)

    def __init__(self, image: Any, relevance: Any, colormap: str = "bwr", opacity: float = 0.6, **kwargs: Any):
        img = as_image(image)
        rel = as_relevance(relevance, img.shape[:2])
        if colormap not in COLORMAPS:
            raise ValueError(f"colormap must be one of {', '.join(COLORMAPS)}; got {colormap!r}")
        if isinstance(opacity, bool) or not isinstance(opacity, (int, float)) or not 0 <= opacity <= 1:
            raise ValueError(f"opacity must be a number in [0, 1]; got {opacity!r}")
        self._relevance = rel
        super().__init__(
            image_png=encode_png(img),
            heatmap_png=encode_png(relevance_to_rgba(rel, colormap)),
            colormap=colormap,
            opacity=float(opacity),
            **kwargs,
        )

    def set_heatmap(self, relevance: Any) -> None:
        """Show a new relevance map of the same size as the image; the view redraws."""
        rel = as_relevance(relevance, self._relevance.shape)
        with self._lock:
            self._relevance = rel
            self.heatmap_png = encode_png(relevance_to_rgba(rel, self.colormap))

    def relevance_at(self, x: int, y: int) -> float:
        """Relevance of the image pixel in column ``x``, row ``y``."""
        return float(self._relevance[y, x])

    @traitlets.observe("colormap")
    def _recolour(self, change: dict) -> None:
        with self._lock:
            self.heatmap_png = encode_png(relevance_to_rgba(self._relevance, change["new"]))

    @request("pixel", x=int, y=int)
    def _on_pixel(self, x: int, y: int) -> dict:
        height, width = self._relevance.shape
        if not (0 <= x < width and 0 <= y < height):
            raise ProtocolError(f"pixel ({x}, {y}) is outside the {width}x{height} image")
        return {"type": "pixel_result", "x": x, "y": y, "value": self.relevance_at(x, y)}
