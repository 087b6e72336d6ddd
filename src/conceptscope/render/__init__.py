"""Turning relevance maps and images into pictures: colormaps, overlays, PNG bytes."""

from .colormap import COLORMAPS, relevance_to_rgba
from .encode import encode_png
from .heatmap import heatmap_png, shrink
from .overlay import overlay

__all__ = ["COLORMAPS", "encode_png", "heatmap_png", "overlay", "relevance_to_rgba", "shrink"]
