"""Grading explanations on the shapes world: images with the evidence masks of their labels, the leaderboard of every
method on fresh (never trained on) images, contrastive heatmaps on images with two classes' evidence, heatmaps of
segmented objects and detected boxes, and the segmenter's context use (L-CRP)."""
from dataclasses import dataclass

import numpy as np
import torch

from ..engine import Contrast, Region
from ..evaluation import evaluate
from ..evaluation.context import context_use
from .concepts import CORNER_MARK
from .detection import detect, detection_output
from .evaluation import relevance_in_masks
from .rules import CLASSES, RULES


def evidence_batch(dataset, indices=None):
    """``(images (N, 3, H, W), masks (N, H, W) bool, labels list)`` of ``dataset``: each mask covers the objects
    that make the image's label true (its class-defining evidence)."""
    indices = range(len(dataset)) if indices is None else indices
    images = torch.stack([dataset[i][0] for i in indices])
    masks = torch.from_numpy(np.stack([dataset.evidence_mask(i) for i in indices]))
    return images, masks, [dataset.label(i) for i in indices]


def leaderboard(world, methods=None, n=200, seed=0, model=None, **kwargs):
    """Every method (or ``methods``) graded on ``n`` fresh test images drawn with ``seed`` (distinct from the training
    and validation seeds), explaining each image's label; ``kwargs`` go to :func:`conceptscope.evaluate`."""
    images, masks, labels = evidence_batch(world.dataset("test", n=n, seed=seed))
    return evaluate(world.model if model is None else model, images, masks, labels, methods,
                    mean=world.mean, std=world.std, **kwargs)


def evidence_ratio(explainer, dataset, target="label", batch=100):
    """How much more of the positive relevance of ``explainer``'s heatmaps lies on the class-defining objects than
    their area would give: ``(ratio, share inside, area share)``, means over the images of ``dataset``. ``target``:
    "label" explains each image's label, None its predicted class."""
    inside, area = [], []
    for start in range(0, len(dataset), batch):
        images, masks, labels = evidence_batch(dataset, range(start, min(start + batch, len(dataset))))
        share, covered = relevance_in_masks(explainer.heatmap(images, labels if target == "label" else target), masks)
        inside.append(share)
        area.append(covered)
    inside, area = np.concatenate(inside), np.concatenate(area)
    return float(inside.mean() / area.mean()), float(inside.mean()), float(area.mean())


def top_concepts_on_evidence(explainer, dataset, layer, k=3):
    """Per image of ``dataset`` (explaining its predicted class), the share of each of the ``k`` most relevant
    concepts' conditional-heatmap positive relevance that lies on the class-defining objects, and the objects' share
    of the image: ``(shares (N, k), areas (N,))``."""
    shares, areas = [], []
    for index in range(len(dataset)):
        explanation = explainer.explain(dataset[index][0], layers=[layer])
        top = [concept.channel for concept in explanation.top_concepts(layer, k=k)]
        mask = dataset.evidence_mask(index)
        share, covered = relevance_in_masks(explanation.conditional_heatmaps(layer, top),
                                            np.repeat(mask[None], len(top), 0))
        shares.append(share)
        areas.append(covered[0])
    return np.stack(shares), np.array(areas)


def contrast_pairs(dataset, n=100):
    """Up to ``n`` triples ``(index, a, b)``: images of class ``a`` that also contain the class-defining objects of a
    class ``b`` (the first in priority order), on objects other than ``a``'s."""
    found = []
    for index in range(len(dataset)):
        objects, a = dataset.objects(index), dataset.label(index)
        on_a = {k for k, obj in enumerate(objects) if RULES[a].matches(obj)}
        for b in range(len(RULES)):
            on_b = {k for k, obj in enumerate(objects) if RULES[b].matches(obj)}
            if b != a and on_b and not on_a & on_b:
                found.append((index, a, b))
                break
        if len(found) == n:
            break
    return found


@dataclass(frozen=True)
class ContrastGrades:
    """Where contrastive heatmaps "a rather than b" put their relevance, per image (arrays of length N): the share of
    the positive relevance on a's evidence (``positive_on_a``) and of the negative relevance on b's (``negative_on_b``,
    NaN where there is none), the evidence areas as fractions of the image, and the summed relevance on each."""
    pairs: list
    positive_on_a: np.ndarray
    negative_on_b: np.ndarray
    area_a: np.ndarray
    area_b: np.ndarray
    sum_on_a: np.ndarray
    sum_on_b: np.ndarray

    def summary(self):
        """Means over the images: shares, areas, and how often the relevance on a's (b's) evidence sums positive
        (negative)."""
        return {"images": len(self.pairs), "positive_on_a": float(self.positive_on_a.mean()),
                "area_a": float(self.area_a.mean()), "negative_on_b": float(np.nanmean(self.negative_on_b)),
                "area_b": float(self.area_b.mean()), "a_positive": float((self.sum_on_a > 0).mean()),
                "b_negative": float((self.sum_on_b < 0).mean())}

    def figure(self):
        """Per-image shares of the positive relevance on a's evidence and of the negative on b's, each beside the
        evidence's share of the image (matplotlib figure)."""
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
        columns = [("positive relevance\non a's evidence", self.positive_on_a, self.area_a),
                   ("negative relevance\non b's evidence", self.negative_on_b, self.area_b)]
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(self.pairs))
        for x, (_, share, area) in enumerate(columns):
            ax.scatter(x + jitter, share, s=8, alpha=0.6, color="C3" if x == 0 else "C0")
            ax.scatter(x + 0.3 + jitter / 3, area, s=6, alpha=0.5, color="grey")
            ax.hlines(np.nanmean(share), x - 0.2, x + 0.2, color="black")
        ax.set_xticks([0, 1], [label for label, _, _ in columns])
        ax.set_ylabel("share (grey: evidence area)")
        ax.set_ylim(0, 1)
        ax.set_title(f"a rather than b, {len(self.pairs)} images", fontsize=9)
        return figure


def grade_contrast(explainer, dataset, n=100, kind="difference"):
    """Contrastive heatmaps ``Contrast(a, b, kind)`` of ``explainer`` on up to ``n`` images of ``dataset`` with both
    classes' evidence (:func:`contrast_pairs`), graded against the evidence masks: :class:`ContrastGrades`."""
    pairs = contrast_pairs(dataset, n)
    if not pairs:
        raise ValueError("no image of the dataset contains two classes' evidence; use a larger dataset")
    images = torch.stack([dataset[index][0] for index, _, _ in pairs])
    heatmaps = explainer.heatmap(images, [Contrast(a, b, kind) for _, a, b in pairs]).double().cpu().numpy()
    on_a = np.stack([dataset.evidence_mask(index, a) for index, a, _ in pairs])
    on_b = np.stack([dataset.evidence_mask(index, b) for index, _, b in pairs])
    positive, negative = heatmaps.clip(min=0), (-heatmaps).clip(min=0)
    negative_total = negative.sum((1, 2))
    return ContrastGrades(
        pairs=[(index, CLASSES[a], CLASSES[b]) for index, a, b in pairs],
        positive_on_a=(positive * on_a).sum((1, 2)) / positive.sum((1, 2)).clip(min=1e-30),
        negative_on_b=np.where(negative_total > 0, (negative * on_b).sum((1, 2)) / negative_total.clip(min=1e-30),
                               np.nan),
        area_a=on_a.mean((1, 2)), area_b=on_b.mean((1, 2)),
        sum_on_a=(heatmaps * on_a).sum((1, 2)), sum_on_b=(heatmaps * on_b).sum((1, 2)))


def _around(masks: torch.Tensor, width: int) -> torch.Tensor:
    """The ring of ``width`` px around each bool mask (N, H, W): its dilation by a (2 width + 1) square, minus it."""
    grown = torch.nn.functional.max_pool2d(masks[:, None].float(), 2 * width + 1, stride=1, padding=width)[:, 0] > 0
    return grown & ~masks


@dataclass(frozen=True)
class RegionGrades:
    """Where heatmaps of a region's decision (a segmented object, a detected box) put their positive relevance, per
    image (arrays of length N; NaN where a heatmap has no positive relevance): on the region (``inside``), on a ring of
    ``ring`` px around it (``around``) and elsewhere (``rest``), beside the region's and the ring's areas as fractions
    of the image."""
    ring: int
    inside: np.ndarray
    around: np.ndarray
    rest: np.ndarray
    area_inside: np.ndarray
    area_around: np.ndarray

    def summary(self):
        """Means over the images whose heatmap has positive relevance (``graded`` of ``images``)."""
        graded = ~np.isnan(self.inside)
        return {"images": len(self.inside), "graded": int(graded.sum()), "ring": self.ring, **{
            name: float(getattr(self, name)[graded].mean()) for name in ("inside", "around", "rest", "area_inside",
                                                                         "area_around")}}


def _grade_regions(heatmaps, regions, ring):
    positive = heatmaps.double().clamp(min=0)
    total = positive.flatten(1).sum(1)
    total = torch.where(total > 0, total, torch.nan)  # no positive relevance: shares undefined (NaN)
    around = _around(regions, ring)
    inside, near = ((positive * m).flatten(1).sum(1) / total for m in (regions, around))
    return RegionGrades(ring, inside.numpy(), near.numpy(), (1 - inside - near).numpy(),
                        regions.double().mean((1, 2)).numpy(), around.double().mean((1, 2)).numpy())


def grade_segments(explainer, dataset, n=100, ring=3):
    """Heatmaps of a segmenter's decision on each image's class-defining objects (``Region(label + 1, their
    mask)``, the segmenter's classes being background + the world's) on the first ``n`` images of ``dataset``, graded
    by where their positive relevance lies: on the objects, a ``ring`` px around them, or elsewhere
    (:class:`RegionGrades`)."""
    indices = range(min(n, len(dataset)))
    images, masks, labels = evidence_batch(dataset, indices)
    heatmaps = explainer.heatmap(images, [Region(label + 1, mask) for label, mask in zip(labels, masks)])
    return _grade_regions(heatmaps.cpu(), masks, ring)


def grade_detections(explainer, dataset, n=100, ring=3):
    """Heatmaps of a detector's top detection on each of the first ``n`` images of ``dataset`` where it scores at
    least 0.5 (a positive logit; its score: ``Output(cell)`` on the centre heatmap, the explainer's ``output``), graded
    by where their positive relevance lies: inside the detected box, a ``ring`` px around it, or elsewhere
    (:class:`RegionGrades`)."""
    indices = range(min(n, len(dataset)))
    images = torch.stack([dataset[i][0] for i in indices])
    raw = torch.from_numpy(np.stack([dataset.raw_image(i) for i in indices]))
    found = [(k, d) for k, d in enumerate(detect(explainer.model, raw)) if len(d["scores"]) and d["scores"][0] >= 0.5]
    if not found:
        raise ValueError("the detector finds no object with a score of at least 0.5 in these images")
    size = images.shape[2:]
    boxes = torch.zeros(len(found), *size, dtype=torch.bool)
    for row, (_, d) in enumerate(found):
        x0, y0 = d["boxes"][0, :2].floor().int().clamp(min=0).tolist()
        x1, y1 = d["boxes"][0, 2:].ceil().int().tolist()
        boxes[row, y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)] = True  # at least the pixel at its corner
    heatmaps = explainer.heatmap(images[[k for k, _ in found]], [detection_output(d, 0) for _, d in found])
    return _grade_regions(heatmaps.cpu(), boxes, ring)


def segment_context(explainer, dataset, layer, indices=None, k=8):
    """L-CRP's context use (:func:`conceptscope.evaluation.context_use`) of a segmenter's decisions on each image's
    class-defining objects (in ``dataset``, or its ``indices``), grouped by class, with the corner mark as the cue
    where the dataset has one."""
    indices = range(len(dataset)) if indices is None else list(indices)
    images, masks, labels = evidence_batch(dataset, indices)
    cues = [dataset.masks(i)[CORNER_MARK] for i in indices] if CORNER_MARK in dataset.concepts else None
    return context_use(explainer, images, [Region(label + 1, mask) for label, mask in zip(labels, masks)], masks,
                       layer, k, groups=[CLASSES[label] for label in labels], cues=cues)
