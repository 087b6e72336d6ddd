"""``evaluate``: every method's localisation metrics over a dataset, as a tidy table with 95 % intervals."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..methods import Methods, available, get
from .localisation import METRICS, interval, localisation


@dataclass(frozen=True)
class Leaderboard:
    """Methods x metrics over a dataset. ``rows``: one dict per (method, metric) with ``mean``, ``low``, ``high``
    (the 95 % bootstrap interval of the mean) and ``n`` (images with a defined value); ``scores``:
    ``{method: {metric: per-image values}}``."""

    rows: list
    scores: dict

    @property
    def methods(self) -> list[str]:
        return list(self.scores)

    @property
    def metrics(self) -> list[str]:
        return list(next(iter(self.scores.values()))) if self.scores else []

    def value(self, method: str, metric: str) -> dict:
        """The row of (``method``, ``metric``)."""
        for row in self.rows:
            if (row["method"], row["metric"]) == (method, metric):
                return row
        raise KeyError(f"no row for method {method!r} and metric {metric!r}; methods: {', '.join(self.methods)}; "
                       f"metrics: {', '.join(self.metrics)}")

    def ranking(self, metric: str = "mass_accuracy") -> list[str]:
        """Method names, best first by the mean of ``metric``."""
        return sorted(self.methods, key=lambda m: -self.value(m, metric)["mean"])

    def to_markdown(self, digits: int = 2) -> str:
        """A Markdown table: one row per method (in ranking order of the first metric), "mean [low, high]" cells."""
        head = "| method | " + " | ".join(self.metrics) + " |"
        lines = [head, "|" + "---|" * (len(self.metrics) + 1)]
        for method in self.ranking(self.metrics[0]):
            cells = []
            for metric in self.metrics:
                row = self.value(method, metric)
                cells.append(f"{row['mean']:.{digits}f} [{row['low']:.{digits}f}, {row['high']:.{digits}f}]")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"rows": self.rows}, indent=1)

    def __repr__(self):
        return self.to_markdown()

    def figure(self, metric: str = "mass_accuracy", ax=None):
        """Bars of ``metric`` per method (best first) with their 95 % intervals; returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        order = self.ranking(metric)[::-1]
        rows = [self.value(m, metric) for m in order]
        means = np.array([r["mean"] for r in rows])
        errors = np.array([[r["mean"] - r["low"] for r in rows], [r["high"] - r["mean"] for r in rows]])
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1), layout="constrained")
        ax.barh(order, means, xerr=errors, color="#1e88e5", ecolor="#263238", capsize=3)
        ax.set_xlabel(f"{metric} (mean, 95 % interval, n = {rows[0]['n'] if rows else 0})")
        return ax.figure


def evaluate(model, images, masks, targets=None, methods=None, metrics=None, *, options=None, batch_size=50,
             progress=True, **normalisation) -> Leaderboard:
    """Grade ``methods`` (names, default all) on ``images`` (N, C, H, W) against the evidence ``masks`` (N, H, W)
    with ``metrics`` (default all of :data:`~.localisation.METRICS`).

    ``targets`` are the classes explained (default: the predictions; give the labels when the masks show the
    label's evidence); ``options`` = ``{method: {option: value}}`` overrides method defaults; ``mean``/``std`` the
    input normalisation (for LRP's box rule). ``model`` may be a :class:`~conceptscope.methods.Methods`.
    """
    runner = model if isinstance(model, Methods) else Methods(model, **normalisation)
    names = available() if methods is None else list(methods)
    images = torch.as_tensor(images)
    masks = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks)
    if masks.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"masks must be (N, H, W) = {(images.shape[0], *images.shape[-2:])} for images of shape "
                         f"{tuple(images.shape)}, got {tuple(masks.shape)}")
    targets = None if targets is None else [int(t) for t in targets]
    options = options or {}
    scores = {}
    for name in tqdm(names, desc="methods", disable=not progress):
        found, settings = {}, dict(options.get(name, {}))
        if "progress" in get(name).defaults:  # the slow methods' own bars follow this one
            settings.setdefault("progress", progress)
        for start in range(0, len(images), batch_size):
            part = slice(start, start + batch_size)
            maps = runner(name, images[part], None if targets is None else targets[part], **settings)
            for metric, values in localisation(maps, masks[part], metrics).items():
                found.setdefault(metric, []).append(values.cpu())
        scores[name] = {metric: torch.cat(parts).numpy() for metric, parts in found.items()}
    rows = [{"method": name, "metric": metric, **dict(zip(("mean", "low", "high", "n"), interval(values)))}
            for name, per_metric in scores.items() for metric, values in per_metric.items()]
    return Leaderboard(rows, scores)


__all__ = ["METRICS", "Leaderboard", "evaluate"]
