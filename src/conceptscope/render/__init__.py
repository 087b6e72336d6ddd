"""Turning relevance maps and images into pictures: colormaps, overlays, displayable RGB pictures, PNG bytes."""

from .colormap import COLORMAPS, relevance_to_rgba
from .encode import decode_png, encode_png
from .heatmap import heatmap_png, shrink
from .overlay import overlay
from .picture import picture_of, to_rgb

__all__ = ["COLORMAPS", "decode_png", "encode_png", "heatmap_png", "overlay", "picture_of", "relevance_to_rgba",
           "shrink", "to_rgb"]
