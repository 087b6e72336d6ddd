"""Jupyter widgets (anywidget) for exploring explanations; front-end modules live in ``js/``."""

from .heatmap import HeatmapView

__all__ = ["HeatmapView"]
