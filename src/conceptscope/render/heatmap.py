"""Relevance maps as PNG bytes for the widgets, full size or shrunk to thumbnails."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .colormap import relevance_to_rgba
from .encode import encode_png


def shrink(relevance: np.ndarray, size: int) -> np.ndarray:
    """Area-average a 2-D map so that its longer side is at most ``size`` pixels (smaller maps are kept)."""
    rel = np.asarray(relevance, dtype=np.float32)
    height, width = rel.shape
    scale = size / max(height, width)
    if scale >= 1:
        return rel
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rel).resize(shape, Image.Resampling.BOX))


def heatmap_png(relevance: np.ndarray, cmap: str = "bwr", size: int | None = None, alpha: bool = False) -> bytes:
    """PNG bytes of ``relevance`` mapped through the diverging colormap ``cmap`` (centred at zero), shrunk
    to at most ``size`` pixels on its longer side when given; ``alpha=True``: opacity grows with |relevance|."""
    rel = relevance if size is None else shrink(relevance, size)
    return encode_png(relevance_to_rgba(rel, cmap, alpha=alpha))
