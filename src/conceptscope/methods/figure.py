"""Static matplotlib figures of methods side by side, for slides and papers."""
from __future__ import annotations

import math

import numpy as np

from ..render import overlay, relevance_to_rgba


def grid_figure(picture: np.ndarray, maps: dict, scores: dict | None = None, metric: str = "mass_accuracy",
                columns: int = 5, opacity: float = 0.6, colormap: str = "bwr", title: str | None = None):
    """One panel per method: ``picture`` (uint8 H, W, 3) with the method's map (``maps``: ``{method: (H, W)}``)
    overlaid, titled with the method's ``metric`` from ``scores`` (``{method: {metric: value}}``) when given."""
    import matplotlib.pyplot as plt

    count = len(maps) + 1
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.1 * columns, 2.3 * rows), squeeze=False, layout="constrained")
    panels = [("input", picture, None), *((name, overlay(picture, relevance_to_rgba(np.asarray(m), colormap),
                                                         opacity), name) for name, m in maps.items())]
    for ax, (name, shown, method) in zip(axes.flat, panels):
        ax.imshow(shown, interpolation="nearest")
        value = (scores or {}).get(method, {}).get(metric) if method else None
        ax.set_title(name if value is None else f"{name}\n{metric} {value:.2f}", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
