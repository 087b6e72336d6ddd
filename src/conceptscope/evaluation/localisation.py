"""Localisation metrics: how well relevance maps ``(B, H, W)`` fall on ground-truth evidence masks ``(B, H, W)``.

All metrics are batched tensor operations, one value per image. Where Quantus has the same metric, the value is
Quantus's for the same inputs with ``abs=False, normalise=False`` (see tests/test_evaluation_localisation.py):

- relevance mass accuracy (Arras et al. 2022): the share of the positive relevance inside the mask;
- relevance rank accuracy (Arras et al. 2022): the share of the K highest-relevance pixels inside the mask,
  K = the mask's size (ties at the K-th value shared out, so no pixel order decides);
- pointing game (Zhang et al. 2018): 1 when a pixel of maximal relevance lies in the mask (ties: any of them);
- relevance-area ratio: mass accuracy divided by the mask's share of the image (1 = no better than uniform);
- top-k IoU: intersection over union of the top ``k`` share of pixels with the mask.

Masks with no pixel raise an error (Quantus scores them NaN, and its pointing game counts them as hits); a map
without positive relevance has no mass accuracy (NaN, counted out of the interval's ``n``).
"""
from __future__ import annotations

import math

import numpy as np
import torch


def _inputs(relevance, masks):
    """``(relevance (B, H*W), masks (B, H*W) bool)`` after the checks every metric needs."""
    relevance = torch.as_tensor(relevance).detach()
    masks = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks)
    if relevance.ndim == 2:
        relevance = relevance[None]
    if masks.ndim == 2:
        masks = masks[None]
    if relevance.ndim != 3:
        raise ValueError(f"relevance must be maps (B, H, W) or one map (H, W), got shape {tuple(relevance.shape)}")
    if masks.shape != relevance.shape:
        raise ValueError(f"ground-truth masks must have the relevance maps' shape {tuple(relevance.shape)} "
                         f"(B, H, W), got {tuple(masks.shape)}; resize the masks to the input size")
    if masks.dtype != torch.bool:
        raise TypeError(f"ground-truth masks must be boolean, got dtype {masks.dtype}")
    empty = ~masks.flatten(1).any(1)
    if empty.any():
        raise ValueError(f"the ground-truth mask of image(s) {empty.nonzero()[:, 0].tolist()} is empty: nothing to "
                         "localise; leave those images out")
    if not relevance.is_floating_point():
        relevance = relevance.double()
    return relevance.flatten(1), masks.flatten(1).to(relevance.device)


def _count(m):
    return m.sum(1, dtype=torch.float64)


def _mass(r, m):
    positive = r.clamp_min(0)
    total = positive.sum(1, dtype=torch.float64)
    inside = torch.where(m, positive, 0).sum(1, dtype=torch.float64)
    return torch.where(total > 0, inside / torch.where(total > 0, total, 1), math.nan)


def _rank(r, m):
    """Mask pixels among the K highest, K = |mask|; pixels tied with the K-th value count by the share of the ties
    that fit into the top K (the expected count under random tie-breaking, so the result never depends on order)."""
    k = m.sum(1)
    kth = r.topk(int(k.max()), dim=1).values.gather(1, (k - 1)[:, None])
    above, tied = r > kth, r == kth
    room = (k - above.sum(1)).double()
    hits = _count(above & m) + room * _count(tied & m) / _count(tied)
    return hits / k.double()


def _pointing(r, m):
    return ((r == r.amax(1, keepdim=True)) & m).any(1).double()


def _area_ratio(r, m):
    return _mass(r, m) / m.double().mean(1)


def _top_iou(r, m, k=0.1):
    if not 0 < k <= 1:
        raise ValueError(f"k is a share of the image's pixels in (0, 1], got {k}")
    count = max(1, math.ceil(k * r.shape[1]))
    top = torch.zeros_like(m).scatter_(1, r.topk(count, dim=1).indices, True)
    return _count(top & m) / _count(top | m)


def relevance_mass_accuracy(relevance, masks) -> torch.Tensor:
    """Share of the positive relevance inside the mask, per image (NaN where there is no positive relevance)."""
    return _mass(*_inputs(relevance, masks))


def relevance_rank_accuracy(relevance, masks) -> torch.Tensor:
    """Share of the K most relevant pixels that lie in the mask, K the mask's pixel count, per image."""
    return _rank(*_inputs(relevance, masks))


def pointing_game(relevance, masks) -> torch.Tensor:
    """1.0 when a pixel of maximal relevance lies in the mask, else 0.0, per image."""
    return _pointing(*_inputs(relevance, masks))


def relevance_area_ratio(relevance, masks) -> torch.Tensor:
    """Relevance mass accuracy over the mask's share of the image: > 1 means relevance is concentrated on it."""
    return _area_ratio(*_inputs(relevance, masks))


def top_k_iou(relevance, masks, k: float = 0.1) -> torch.Tensor:
    """IoU of the ``k`` share (0 < k <= 1) of the most relevant pixels with the mask, per image (pixels tied at the
    boundary are taken in pixel order)."""
    return _top_iou(*_inputs(relevance, masks), k)


#: metric name -> function(relevance, masks) -> (B,) tensor
METRICS = {
    "mass_accuracy": relevance_mass_accuracy,
    "rank_accuracy": relevance_rank_accuracy,
    "pointing_game": pointing_game,
    "area_ratio": relevance_area_ratio,
    "top10_iou": top_k_iou,
}
_KERNELS = {"mass_accuracy": _mass, "rank_accuracy": _rank, "pointing_game": _pointing, "area_ratio": _area_ratio,
            "top10_iou": _top_iou}


def localisation(relevance, masks, metrics=None) -> dict[str, torch.Tensor]:
    """``{metric: (B,) values}`` for ``metrics`` (names of :data:`METRICS`, default all)."""
    names = list(METRICS) if metrics is None else list(metrics)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; available metrics: {', '.join(METRICS)}")
    r, m = _inputs(relevance, masks)  # checked once for all metrics
    return {name: _KERNELS[name](r, m) for name in names}


def interval(values, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)``: the mean of the finite ``values`` and its percentile bootstrap interval."""
    values = torch.as_tensor(values).double()
    values = values[torch.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    generator = torch.Generator().manual_seed(seed)
    means = values[torch.randint(0, n, (resamples, n), generator=generator)].mean(1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return float(values.mean()), low, high, n
