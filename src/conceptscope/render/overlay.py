"""Alpha blending of a heatmap over an image, the same composite the widgets draw on canvas."""

from __future__ import annotations

import numpy as np


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """Blend ``heatmap`` (H, W, 3|4 uint8) over ``image`` (H, W, 3 uint8) with ``opacity`` in [0, 1].

    Returns ``round((1 - opacity) * image + opacity * heatmap)`` as uint8 RGB (alpha of the
    heatmap is ignored: colormapped heatmaps are opaque).
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]; got {opacity}")
    if image.shape[:2] != heatmap.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape[:2]} differ in size")
    blend = (1.0 - opacity) * image[..., :3].astype(np.float64) + opacity * heatmap[..., :3]
    return np.rint(blend).astype(np.uint8)
