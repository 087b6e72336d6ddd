"""How a heatmap is shown on its image (:data:`OVERLAYS`), and the most relevant pixels of a map, which the "contour"
display outlines on the image."""

from __future__ import annotations

import math

import numpy as np

from .colormap import colour_table
from .encode import encode_png

OVERLAYS: tuple[str, ...] = ("overlay", "side-by-side", "contour")
"""The displays of a heatmap: over the image (opacity growing with |R|), next to it, or the image with the outline of
its most relevant pixels."""


def check_overlay(overlay: object) -> str:
    """``overlay`` if it is one of :data:`OVERLAYS`, else a ValueError that lists them."""
    if not isinstance(overlay, str) or overlay not in OVERLAYS:
        raise ValueError(f"overlay must be one of {', '.join(map(repr, OVERLAYS))}; got {overlay!r}")
    return overlay


def check_percent(percent: object) -> float:
    """``percent`` as a float in (0, 100], or a ValueError/TypeError that says what is expected."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float, np.integer, np.floating)):
        raise TypeError(f"contour_percent must be a number in (0, 100]; got {type(percent).__name__} {percent!r}")
    if not 0 < percent <= 100:
        raise ValueError(f"contour_percent must be in (0, 100] (the share of pixels outlined, e.g. 10); "
                         f"got {percent!r}")
    return float(percent)


def top_mask(relevance: np.ndarray, percent: float) -> np.ndarray:
    """Bool (H, W) mask of the ``ceil(percent / 100 * H * W)`` pixels of largest positive relevance: pixels at least
    as relevant as the last of them (ties included), never a pixel with relevance <= 0."""
    rel = np.asarray(relevance, dtype=np.float64)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be 2-D (H, W); got shape {rel.shape}")
    n = math.ceil(check_percent(percent) / 100 * rel.size)
    threshold = np.partition(rel.ravel(), rel.size - n)[rel.size - n]
    return (rel >= threshold) & (rel > 0)


def contour_png(relevance: np.ndarray, percent: float, cmap: str = "bwr") -> bytes:
    """RGBA PNG of :func:`top_mask`: its pixels opaque in ``cmap``'s positive-end colour (the outline's colour),
    the rest transparent. The views draw its outline (js/lib/canvas.js)."""
    mask = top_mask(relevance, percent)
    rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
    rgba[mask] = colour_table(cmap)[-1, :3].tolist() + [255]
    return encode_png(rgba)
