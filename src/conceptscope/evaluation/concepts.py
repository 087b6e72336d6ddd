"""Concept-level faithfulness: switch off a layer's concepts (channels) in the order of their CRP relevance for this
prediction, of their activation, or at random, and watch the target score.

A faithful concept explanation names the channels the prediction needs: deleting the top-k channels by CRP relevance
should lower the score faster than deleting the top-k by activation, and far faster than k random ones. Channels are
those the explanations see (BatchNorm merged into the layer, as in the Explainer), switched off by a forward hook on a
private copy of the model: set to zero, or to their mean activation (per position) over the explained images.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models import check_layer
from ..models.private import private_copy
from ._common import (
    as_images,
    channel_mask_hook,
    check_batch_size,
    mean_band,
    new_axes,
    per_channel,
    scores,
)

ORDERS = ("relevance", "activation", "random")
FILLS = ("zero", "mean")


@dataclass(frozen=True)
class ConceptCurves:
    """Target scores with concepts of ``layer`` switched off: ``curves[order]`` (B, len(counts)) after removing
    ``counts`` concepts (``mode="deletion"``), or with only that many switched on (``mode="insertion"``)."""
    layer: str
    mode: str
    counts: np.ndarray
    curves: dict
    targets: np.ndarray
    settings: dict = field(default_factory=dict)

    def area_between(self, lower="relevance", upper="random"):
        """Per image, the area between two orders' curves over the fraction of concepts removed (trapezoidal rule, in
        units of the score): positive when ``lower`` hurts the prediction more than ``upper`` (deletion)."""
        fractions = self.counts / self.counts[-1]
        return np.trapezoid(self.curves[upper] - self.curves[lower], fractions, axis=1)

    def summary(self):
        """Mean curves' areas per order pair, and the mean score after removing 1, 4 and 16 concepts per order."""
        result = {"layer": self.layer, "images": len(self.targets)}
        orders = list(self.curves)
        for lower in orders:
            for upper in orders[orders.index(lower) + 1:]:
                result[f"area {upper} - {lower}"] = float(self.area_between(lower, upper).mean())
        for k in (1, 4, 16):
            if k in self.counts:
                column = list(self.counts).index(k)
                for order, curve in self.curves.items():
                    result[f"{order} @{k}"] = float(curve[:, column].mean())
        return result

    def figure(self, ax=None):
        """Mean curve per order with a band of one standard error."""
        figure, ax = new_axes(ax)
        for order, curve in self.curves.items():
            mean_band(ax, self.counts, curve, order)
        ax.set_xlabel(f"concepts of {self.layer} {'removed' if self.mode == 'deletion' else 'kept'}")
        ax.set_ylabel(f"target {self.settings.get('score', 'logit')}")
        ax.set_title(f"concept {self.mode} ({self.settings.get('fill')}), {len(self.targets)} images", fontsize=9)
        ax.legend(fontsize=8)
        return figure


def concept_deletion(explainer, images, layer, targets=None, *, orders=ORDERS, counts=None, fill="zero",
                     mode="deletion", score="logit", batch_size=256, seed=0, progress=True):
    """Concept deletion (or insertion) curves of ``layer`` for a batch of images: :class:`ConceptCurves`.

    ``explainer`` is a :class:`conceptscope.Explainer`; relevance and activation per channel (summed over positions)
    come from ``explainer.attribute`` for ``targets`` (None: the predictions). ``counts`` are the numbers of concepts
    removed at which the score is measured (default every count from 0 to all channels). ``fill`` is ``"zero"`` or
    ``"mean"`` (each channel's mean activation map over ``images``). ``random`` draws one permutation per image
    (``seed``). All counts and orders of an image run as batched forward passes of ``batch_size`` inputs.
    """
    orders = [orders] if isinstance(orders, str) else list(orders)
    for order in orders:
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; use some of {', '.join(map(repr, ORDERS))}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(map(repr, FILLS))}, got {fill!r}")
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    batch_size = check_batch_size(batch_size)
    check_layer(explainer.model, layer)
    attribution = explainer.attribute(images, targets, layers=[layer], heatmaps=False)
    activation, relevance = attribution.activations[layer], attribution.relevances[layer]
    inputs = as_images(images, explainer.model)
    channels = activation.shape[1]
    counts = _counts(counts, channels)
    totals = {"relevance": per_channel(relevance), "activation": per_channel(activation)}
    generator = torch.Generator().manual_seed(seed)
    totals["random"] = torch.stack([torch.randperm(channels, generator=generator) for _ in inputs]).to(
        activation.device, activation.dtype)
    ranks = {order: _ranks(totals[order]) for order in orders}  # (B, C): 0 = removed first
    value = 0.0 if fill == "zero" else activation.mean(0, keepdim=True)
    targets = torch.tensor(attribution.targets, device=inputs.device)

    model = private_copy(explainer.model, explainer.composite.canonizers)
    current = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(channel_mask_hook(lambda: current["keep"], value))
    counts_t = torch.as_tensor(counts, device=inputs.device)
    per_image = len(orders) * len(counts)
    chunk = max(1, batch_size // per_image)
    curves = {order: [] for order in orders}
    try:
        for start in tqdm(range(0, len(inputs), chunk), desc=f"concept {mode}", disable=not progress):
            part = slice(start, start + chunk)
            rank = torch.stack([ranks[order][part] for order in orders], 1)  # (b, O, C)
            removed = rank[:, :, None, :] < counts_t[None, None, :, None]  # (b, O, K, C)
            keep = ~removed if mode == "deletion" else removed
            b = rank.shape[0]
            batch = inputs[part].repeat_interleave(per_image, 0)
            flat_keep = keep.reshape(b * per_image, channels)
            values = []
            for offset in range(0, len(batch), batch_size):
                current["keep"] = flat_keep[offset:offset + batch_size]
                chosen = targets[part].repeat_interleave(per_image)[offset:offset + batch_size]
                values.append(scores(model, batch[offset:offset + batch_size], chosen, score, batch_size)[0])
            values = torch.cat(values).view(b, len(orders), len(counts))
            for index, order in enumerate(orders):
                curves[order].append(values[:, index])
    finally:
        handle.remove()
    return ConceptCurves(layer, mode, np.asarray(counts), {o: torch.cat(c).double().cpu().numpy()
                                                           for o, c in curves.items()},
                         np.asarray(attribution.targets), dict(fill=fill, score=score, seed=seed))


def _counts(counts, channels):
    if counts is None:
        return list(range(channels + 1))
    counts = sorted(int(k) for k in counts)
    if not counts or counts[0] < 0 or counts[-1] > channels:
        raise ValueError(f"counts must be numbers of concepts from 0 to the layer's {channels} channels, got {counts}")
    return counts


def _ranks(values):
    """Each channel's position in descending order of ``values`` (B, C); ties keep channel order."""
    ordering = torch.sort(values, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(ordering)
    ranks.scatter_(1, ordering, torch.arange(ordering.shape[1], device=ordering.device).expand_as(ordering))
    return ranks
