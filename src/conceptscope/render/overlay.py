"""Alpha blending of a heatmap over an image, the same composite the widgets draw on canvas."""

from __future__ import annotations

import numpy as np


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """Blend ``heatmap`` (H, W, 3|4 uint8) over ``image`` (H, W, 3 uint8) with ``opacity`` in [0, 1].

    Returns ``round((1 - w) * image + w * heatmap)`` as uint8 RGB, with ``w = opacity`` times the heatmap's alpha
    (0..1; 1 where it has none): an opaque colormapped heatmap washes over the whole image, one with alpha growing with
    |relevance| (``relevance_to_rgba(..., alpha=True)``) leaves pixels of zero relevance untouched. The same composite
    the widgets draw on canvas.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    if image.shape[:2] != heatmap.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape[:2]} differ in size")
    weight = opacity * (heatmap[..., 3:4] / 255.0 if heatmap.shape[-1] == 4 else 1.0)
    blend = (1.0 - weight) * image[..., :3].astype(np.float64) + weight * heatmap[..., :3]
    return np.rint(blend).astype(np.uint8)
