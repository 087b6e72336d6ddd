"""Context use (L-CRP): how much of a segmentation or detection decision comes from concepts located outside the
object (its context) rather than on it, per concept and in total.

For each image, the decision (a :class:`~conceptscope.Region` or :class:`~conceptscope.Output` target) is explained
once; each of the layer's top concepts gets its conditional heatmap, and the concept's *context share* is the share of
that heatmap's positive relevance outside the object's mask (and, given ``cues``, on a cue's mask). The decision's
context share is the relevance-weighted mean over its concepts, beside the context share of the plain heatmap.
"""
from dataclasses import dataclass

import numpy as np
import torch


def _positive_share(heatmaps: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Share of each heatmap's (K, H, W) positive relevance inside ``mask`` (H, W); NaN where there is none."""
    positive = heatmaps.double().clamp(min=0)
    total = positive.flatten(1).sum(1)
    inside = (positive * mask.to(positive)).flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=1e-300), torch.nan).cpu().numpy()


def _mean(values) -> float:
    """Mean of the non-NaN values; NaN if there are none."""
    values = np.asarray(values, dtype=float)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def _check_mask(mask, shape, what, row):
    mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{what} {row} must be a bool mask of the image's size {tuple(shape)}, got {mask.dtype} of "
                         f"shape {tuple(mask.shape)}")
    if what == "object mask" and not mask.any():
        raise ValueError(f"object mask {row} is empty: context is what lies outside an object, so give the object's "
                         "pixels")
    return mask


@dataclass(frozen=True)
class ContextUse:
    """Per image (arrays of length N): its ``group`` (e.g. the class), the heatmap's ``heatmap_context`` share and the
    concept-weighted ``context`` share; per concept of each image (arrays of length N x k): ``image``, ``channel``,
    ``relevance``, ``outside`` (context share) and ``on_cue`` (share on the cue mask; NaN without cues)."""
    layer: str
    groups: list
    heatmap_context: np.ndarray
    context: np.ndarray
    image: np.ndarray
    channel: np.ndarray
    relevance: np.ndarray
    outside: np.ndarray
    on_cue: np.ndarray

    def per_group(self) -> dict:
        """``{group: {"images", "context", "heatmap_context"}}``: mean shares over each group's images."""
        groups = np.array(self.groups, dtype=object)
        return {group: {"images": int((groups == group).sum()),
                        "context": _mean(self.context[groups == group]),
                        "heatmap_context": _mean(self.heatmap_context[groups == group])}
                for group in dict.fromkeys(self.groups)}

    def concepts(self, group=None) -> list[dict]:
        """Each channel among the top concepts (of ``group``'s images, or all): how often it was a top concept, its
        summed relevance and its relevance-weighted mean context and cue shares, by falling summed relevance."""
        rows = np.ones(len(self.image), dtype=bool) if group is None else np.isin(
            self.image, [k for k, g in enumerate(self.groups) if g == group])
        table = []
        for channel in np.unique(self.channel[rows]):
            mine = rows & (self.channel == channel) & ~np.isnan(self.outside)
            weights = np.clip(self.relevance[mine], 1e-12, None)
            if not mine.any():
                continue
            cue = self.on_cue[mine]
            table.append({"channel": int(channel), "count": int(mine.sum()), "relevance": float(self.relevance[
                mine].sum()), "outside": float(np.average(self.outside[mine], weights=weights)),
                "on_cue": float(np.average(cue, weights=weights)) if not np.isnan(cue).any() else float("nan")})
        return sorted(table, key=lambda row: -row["relevance"])

    def summary(self, top: int = 5) -> dict:
        """Images, the mean context shares in total and per group, and the ``top`` concepts overall."""
        return {"layer": self.layer, "images": len(self.groups), "context": _mean(self.context),
                "heatmap_context": _mean(self.heatmap_context), "groups": self.per_group(),
                "concepts": self.concepts()[:top]}

    def figure(self, top: int = 12):
        """Left: the context share per group (concept-weighted, and of the heatmap). Right: the ``top`` concepts'
        context shares (bars) and cue shares (dots), by summed relevance (matplotlib figure)."""
        import matplotlib.pyplot as plt

        figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
        groups = self.per_group()
        x = np.arange(len(groups))
        left.bar(x - 0.2, [g["context"] for g in groups.values()], 0.4, label="concepts")
        left.bar(x + 0.2, [g["heatmap_context"] for g in groups.values()], 0.4, label="heatmap")
        left.set_xticks(x, [str(name) for name in groups], rotation=40, ha="right", fontsize=8)
        left.set_ylim(0, 1)
        left.set_ylabel("relevance share outside the object")
        left.legend(fontsize=8)
        concepts = self.concepts()[:top]
        x = np.arange(len(concepts))
        right.bar(x, [c["outside"] for c in concepts], color="C1", label="outside the object")
        right.scatter(x, [c["on_cue"] for c in concepts], color="C3", zorder=3, label="on the cue")
        right.set_xticks(x, [str(c["channel"]) for c in concepts], fontsize=8)
        right.set_xlabel(f"top concepts of {self.layer} (channel)")
        right.set_ylim(0, 1)
        right.legend(fontsize=8)
        return figure


def context_use(explainer, images, targets, masks, layer: str, k: int = 8, groups=None, cues=None) -> ContextUse:
    """Context use of ``explainer``'s decisions ``targets`` (one per image, e.g. ``cs.Region(cls, mask)`` or
    ``cs.Output(index)``) on ``images`` (N, C, H, W), with each object's bool ``masks`` (N, H, W) of the input's size,
    for the top ``k`` concepts of ``layer``. ``groups`` (one label per image, e.g. its class) and ``cues`` (bool
    masks (N, H, W) of a context cue, e.g. a co-occurring mark) are optional. Returns :class:`ContextUse`."""
    images = torch.as_tensor(images)
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    count = len(images)
    targets, groups = list(targets), list(range(count)) if groups is None else list(groups)
    for what, values in (("targets", targets), ("masks", masks), ("groups", groups)) + (
            (("cues", cues),) if cues is not None else ()):
        if len(values) != count:
            raise ValueError(f"got {len(values)} {what} for {count} images: give one per image")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    heatmap_context, context, rows = [], [], []
    for row in range(count):
        mask = _check_mask(masks[row], images.shape[2:], "object mask", row)
        cue = None if cues is None else _check_mask(cues[row], images.shape[2:], "cue mask", row)
        explanation = explainer.explain(images[row], targets[row], layer)
        top = [c for c in explanation.top_concepts(layer, k) if c.relevance > 0]
        heatmap_context.append(1 - _positive_share(explanation.heatmap[None], mask)[0])
        if not top:
            context.append(np.nan)
            continue
        maps = explanation.conditional_heatmaps(layer, [c.channel for c in top])
        outside = 1 - _positive_share(maps, mask)
        on_cue = _positive_share(maps, cue) if cue is not None else np.full(len(top), np.nan)
        relevance = np.array([c.relevance for c in top])
        valid = ~np.isnan(outside)
        context.append(float(np.average(outside[valid], weights=relevance[valid])) if valid.any() else np.nan)
        rows += [(row, c.channel, c.relevance, o, q) for c, o, q in zip(top, outside, on_cue)]
    image, channel, relevance, outside, on_cue = (np.array(column) for column in zip(*rows)) if rows else (
        np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0))
    return ContextUse(layer, groups, np.array(heatmap_context), np.array(context), image.astype(int),
                      channel.astype(int), relevance.astype(float), outside.astype(float), on_cue.astype(float))
