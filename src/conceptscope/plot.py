"""Static matplotlib figures of explanations for papers and slides: a heatmap with its colour bar, a concept ranking,
reference samples and a composition tree. The widgets' ``figure()`` methods draw with these; each function takes an
``ax`` to draw into (or makes a figure) and returns the figure, so ``savefig("x.pdf")`` gives vector output.

Concepts are named ``"label (layer #c)"`` where ``labels`` = ``{layer: {channel: text}}`` has a text for them, else
``"layer #c"``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .render import check_overlay, relevance_to_rgba, top_mask
from .render import overlay as blend  # heatmap() takes an argument called overlay
from .render.colormap import colormap, colour_table

Labels = Mapping[str, Mapping[int, str]]


def concept_name(layer: str, channel: int, labels: Labels | None = None) -> str:
    """``"label (layer #c)"`` when ``labels`` names the concept, else ``"layer #c"``."""
    text = (labels or {}).get(layer, {}).get(int(channel))
    return f"{text} ({layer} #{channel})" if text else f"{layer} #{channel}"


def _axes(ax, width=3.6, height=3.2):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    figure, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return figure, ax


PANEL_GAP = 4  # pixels between the image and the heatmap shown side by side (as in js/lib/geometry.js)


def heatmap(picture: np.ndarray, relevance, ax=None, *, cmap: str = "bwr", opacity: float = 1.0,
            title: str | None = None, logit: float | None = None, colorbar: bool = True, overlay: str = "overlay",
            contour_percent: float = 10.0):
    """``picture`` (uint8 H, W, 3) in its own colours with ``relevance`` (H, W) over it, as opaque as |relevance| is
    large (zero leaves the pixel untouched), in a diverging colour map centred at zero; the colour bar spans
    ±max |R| and, given the explained ``logit``, says which share of it the heatmap holds.

    ``overlay="side-by-side"`` draws the picture and the heatmap (on white) next to each other instead;
    ``overlay="contour"`` the picture with the outline of its ``contour_percent`` % most positively relevant pixels,
    in the colour map's positive-end colour (the views' displays of the same names)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    relevance = np.asarray(relevance, dtype=np.float64)
    if relevance.shape != picture.shape[:2]:
        raise ValueError(f"relevance {relevance.shape} and picture {picture.shape[:2]} differ in size")
    check_overlay(overlay)
    mask = top_mask(relevance, contour_percent) if overlay == "contour" else None  # checks the percent first
    figure, ax = _axes(ax, 6.4 if overlay == "side-by-side" else 3.6)
    vmax = float(np.abs(relevance).max(initial=0.0))
    rgba = relevance_to_rgba(relevance, cmap, alpha=True)
    if overlay == "overlay":
        ax.imshow(blend(picture, rgba, opacity), interpolation="nearest")
    elif overlay == "side-by-side":
        white = np.full(picture.shape[:2] + (3,), 255, np.uint8)
        gap = np.full((picture.shape[0], PANEL_GAP, 3), 255, np.uint8)
        ax.imshow(np.concatenate([picture[..., :3], gap, blend(white, rgba, 1.0)], axis=1),
                  interpolation="nearest")
    else:
        ax.imshow(picture[..., :3], interpolation="nearest")
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour_table(cmap)[-1, :3] / 255], linewidths=1.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        bar = figure.colorbar(ScalarMappable(Normalize(-vmax or -1.0, vmax or 1.0), colormap(cmap)), ax=ax,
                              fraction=0.046, pad=0.04)
        total = float(relevance.sum())
        share = f" = {total / logit:.0%} of the logit {logit:.3g}" if logit else ""
        outline = f"\noutline: top {contour_percent:g} % of pixels by R > 0" if overlay == "contour" else ""
        bar.set_label(f"relevance: max |R| {vmax:.3g}\nΣR {total:.3g}{share}{outline}", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return figure


def concepts(scores: Sequence, ax=None, *, labels: Labels | None = None, title: str | None = None):
    """A concept ranking (``ConceptScore`` items, e.g. from ``top_concepts``) as horizontal bars of each concept's
    share of the layer's relevance, most relevant on top."""
    figure, ax = _axes(ax, 4.2, 0.35 * max(len(scores), 1) + 0.9)
    if not scores:
        ax.text(0.5, 0.5, "no concepts ranked yet", ha="center", va="center")
        ax.set_axis_off()
        return figure
    names = [concept_name(s.layer, s.channel, labels) for s in scores]
    shares = [s.share for s in scores]
    ax.barh(range(len(scores)), shares, color=["#d32f2f" if v >= 0 else "#1e88e5" for v in shares])
    ax.set_yticks(range(len(scores)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of the layer's relevance", fontsize=8)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_title(title or f"top concepts of {scores[0].layer}", fontsize=9)
    return figure


def message(text: str, ax=None):
    """A figure (or ``ax``) that only says ``text``: what a view draws before it has anything to show."""
    figure, ax = _axes(ax, 3.6, 1.2)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
    ax.set_axis_off()
    return figure


def references(items: Sequence, *, title: str | None = None, columns: int = 8, empty: str = "no references",
               figure=None):
    """Reference samples (the atlas' ``Reference`` items, best first) in a row of images, each titled with its
    dataset index and score; ``empty`` is shown when there are none. ``figure``: a (sub)figure to draw into."""
    import matplotlib.pyplot as plt

    count = max(1, min(len(items), columns))
    rows = max(1, -(-len(items) // columns))
    if figure is None:
        figure = plt.figure(figsize=(1.3 * count, 1.5 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, count, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    if not items:
        axes[0, 0].text(0.5, 0.5, empty, ha="center", va="center", fontsize=9)
    for ax, item in zip(axes.flat, items):
        ax.imshow(item.image, interpolation="nearest")
        ax.set_title(f"#{item.index}\n{item.score:.3g}", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    return figure


def tree(node, ax=None, *, labels: Labels | None = None, depth: int = 2):
    """A composition tree (a ``CompositionNode``) ``depth`` levels deep, as boxes from the root on the left to its
    sub-concepts on the right, each with its share of its parent's relevance."""
    levels = [[(node, None)]]
    for _ in range(depth):
        levels.append([(child, parent) for parent, _ in levels[-1] for child in parent.children])
    levels = [level for level in levels if level]
    figure, ax = _axes(ax, 2.6 * len(levels), 0.5 * max(map(len, levels)) + 0.8)
    places = {}
    for x, level in enumerate(levels):
        for row, (item, _) in enumerate(level):
            places[id(item)] = (x, 1 - (row + 1) / (len(level) + 1))
    for level in levels[1:]:
        for item, parent in level:
            (x0, y0), (x1, y1) = places[id(parent)], places[id(item)]
            ax.plot([x0, x1], [y0, y1], color="#90a4ae", linewidth=0.8, zorder=1)
    for level in levels:
        for item, parent in level:
            x, y = places[id(item)]
            text = concept_name(item.layer, item.channel, labels)
            if parent is not None:
                text += f"\n{item.share:.0%} of its parent"
            ax.text(x, y, text, ha="center", va="center", fontsize=7, zorder=2,
                    bbox=dict(boxstyle="round", facecolor="#fff3e0" if parent is None else "white",
                              edgecolor="#ef6c00" if parent is None else "#90a4ae"))
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    ax.set_title(f"composition of {concept_name(node.layer, node.channel, labels)}", fontsize=9)
    return figure
