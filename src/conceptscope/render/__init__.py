"""Turning relevance maps and images into pictures: colormaps, overlays, displayable RGB pictures, PNG bytes."""

from .colormap import COLORMAPS, relevance_to_rgba
from .contour import OVERLAYS, check_overlay, check_percent, contour_png, top_mask
from .encode import decode_png, encode_png
from .heatmap import heatmap_png, shrink
from .overlay import overlay
from .picture import picture_of, to_rgb

__all__ = ["COLORMAPS", "OVERLAYS", "check_overlay", "check_percent", "contour_png", "decode_png", "encode_png",
           "heatmap_png", "overlay", "picture_of", "relevance_to_rgba", "shrink", "to_rgb", "top_mask"]
