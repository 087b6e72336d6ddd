"""The running statistics of an atlas build, as a flat dict of tensors (exactly what a state file holds).

Per layer and mode, a top-k buffer per channel (RelMax: relevance summed over space; ActMax: activation maximum over
space); per layer, relevance statistics per class of the explained target (CRP's RelStats; for a region or a
detection, its class): the relevance each channel carries summed over the class's samples, and the top-k samples per
(channel, class). A sample whose score is exactly zero (a dead concept: the channel carries no relevance, or has no
activation, on it) never enters a buffer; instead each channel counts its "live" samples (non-zero score), so a
channel live on fewer than k samples keeps only those. Class sums are kept in int64 fixed point (units of 2**-32),
whose addition is exact and associative, so any split of the dataset into batches, checkpoints or ranks gives the
same bits. Everything grows with channels x classes x k, never with the dataset.
"""
import torch

from ..engine.targets import largest_region, peak, target_class
from . import topk

#: RelMax (relevance summed over space) and ActMax (activation maximum over space)
MODES = ("relevance", "activation")
#: what each sample's relevance is explained for: its label's or the predicted class's logit (classifiers), the largest
#: predicted non-background region of a segmenter (``engine.targets.largest_region``), or the largest element of a
#: dense score map, e.g. a detector's strongest detection (``engine.targets.peak``)
TARGETS = ("label", "prediction", "region", "peak")
#: the target policy (a function of the output, or None: the prediction) of each target but "label"
POLICIES = {"prediction": None, "region": largest_region, "peak": peak}


def explained_for(target: str, labels):
    """What the explainer is asked to explain for samples with ``labels`` under the atlas' ``target``: the labels, or
    the target's policy (one target per image chosen from the output; None: the predicted class)."""
    return list(labels) if target == "label" else POLICIES[target]
FIXED_POINT = 2.0 ** 32
_LIMIT = 2.0 ** 30  # largest |relevance| per sample and per class sum: fixed-point values stay below 2**62


def channel_scores(tensor, reduce):
    """``(B, C, ...)`` → ``(B, C)``: ``"sum"`` or ``"max"`` over the positions of each channel."""
    if tensor.dim() == 2:
        return tensor
    flat = tensor.flatten(2)
    return flat.sum(2) if reduce == "sum" else flat.amax(2)


class AtlasState:
    """Top-k buffers and class statistics; ``tensors`` maps state-file keys to tensors.

    Keys: ``top/<mode>/<layer>/values|indices`` (C, k), ``top/<mode>/<layer>/live`` (C,) samples with a non-zero
    score, ``class/<layer>/relevance`` (C, classes, int64 fixed point), ``class/<layer>/values|indices``
    (C, classes, k), ``class/<layer>/live`` (C, classes) and ``class/counts`` (classes,).
    """

    def __init__(self, tensors, channels, modes, k):
        self.tensors, self.channels, self.modes, self.k = tensors, dict(channels), tuple(modes), k

    @classmethod
    def empty(cls, channels, modes, k, classes, device=None):
        tensors = {"class/counts": torch.zeros(classes, dtype=torch.int64, device=device)}
        for layer, count in channels.items():
            for mode in modes:
                tensors[f"top/{mode}/{layer}/values"], tensors[f"top/{mode}/{layer}/indices"] = topk.empty(
                    (count,), k, device)
                tensors[f"top/{mode}/{layer}/live"] = torch.zeros(count, dtype=torch.int64, device=device)
            tensors[f"class/{layer}/live"] = torch.zeros((count, classes), dtype=torch.int64, device=device)
            tensors[f"class/{layer}/relevance"] = torch.zeros((count, classes), dtype=torch.int64, device=device)
            tensors[f"class/{layer}/values"], tensors[f"class/{layer}/indices"] = topk.empty(
                (count, classes), k, device)
        return cls(tensors, channels, modes, k)

    def update(self, indices, attribution):
        """Add one batch: dataset ``indices`` (B,) and the engine's :class:`Attribution` of those samples."""
        t = self.tensors
        device = t["class/counts"].device
        indices = torch.as_tensor(indices, dtype=torch.int64, device=device)
        targets = torch.as_tensor([target_class(t) for t in attribution.targets], dtype=torch.int64, device=device)
        classes, inverse = torch.unique(targets, return_inverse=True)
        t["class/counts"].index_add_(0, targets, torch.ones_like(targets))
        for layer in self.channels:
            relevance = channel_scores(attribution.relevances[layer], "sum").to(device)
            if not torch.isfinite(relevance).all():
                raise FloatingPointError(f"relevance of layer {layer!r} is not finite for dataset items "
                                         f"{indices[~torch.isfinite(relevance).all(1)].tolist()}")
            for mode in self.modes:
                key = f"top/{mode}/{layer}/"
                scores = relevance if mode == "relevance" else channel_scores(attribution.activations[layer], "max")
                candidates = scores.to(device).T
                live = candidates != 0
                t[key + "live"] += live.sum(1)
                candidates = candidates.masked_fill(~live, float("-inf"))  # dead: never a reference
                t[key + "values"], t[key + "indices"] = topk.merge(
                    t[key + "values"], t[key + "indices"], candidates, indices.expand_as(candidates), self.k)
            self._add_class_stats(layer, relevance, indices, targets, classes, inverse)

    def _add_class_stats(self, layer, relevance, indices, targets, classes, inverse):
        t = self.tensors
        sums = t[f"class/{layer}/relevance"]
        if relevance.abs().max() >= _LIMIT:
            raise OverflowError(f"relevance of layer {layer!r} exceeds the fixed-point range of class sums (2**30)")
        sums.index_add_(1, targets, torch.round(relevance.double() * FIXED_POINT).to(torch.int64).T)
        if sums.abs().max() >= _LIMIT * FIXED_POINT:
            raise OverflowError(f"class relevance sums of layer {layer!r} exceed the fixed-point range (2**30)")
        # candidates (C, U, B): sample b competes only in the buffer of its own class
        own = inverse[None, None, :] == torch.arange(len(classes), device=inverse.device)[None, :, None]
        own = own & (relevance.T[:, None, :] != 0)  # (C, U, B): the sample's own class, and the channel is live on it
        t[f"class/{layer}/live"][:, classes] += own.sum(2)
        values = torch.where(own, relevance.T[:, None, :], float("-inf"))
        ids = torch.where(own, indices[None, None, :], topk.EMPTY_INDEX).expand_as(values)
        key = f"class/{layer}/"
        merged = topk.merge(t[key + "values"][:, classes], t[key + "indices"][:, classes], values, ids, self.k)
        t[key + "values"][:, classes], t[key + "indices"][:, classes] = merged

    @staticmethod
    def merge(states):
        """One state holding the statistics of all ``states`` (disjoint sample sets), independent of their order."""
        if len(states) == 1:  # already merged: each update keeps its buffers sorted
            return states[0]
        first = states[0]
        merged = {}
        for key, value in first.tensors.items():
            if key.endswith("/values"):
                base = key[: -len("values")]
                kept = topk.empty(value.shape[:-1], 0, value.device)
                merged[key], merged[base + "indices"] = topk.merge(
                    *kept, torch.cat([s.tensors[key] for s in states], -1),
                    torch.cat([s.tensors[base + "indices"] for s in states], -1), first.k)
            elif not key.endswith("/indices"):
                merged[key] = torch.stack([s.tensors[key] for s in states]).sum(0)
        return AtlasState(merged, first.channels, first.modes, first.k)
