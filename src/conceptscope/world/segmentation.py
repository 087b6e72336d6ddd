"""Semantic segmentation in the shapes world: per-pixel ground truth from the object masks, prediction and mean IoU.

A pixel's class is the image's class on the objects that make its rule true (``evidence_mask``) and the background
(class 0) everywhere else; class k + 1 is the world's class k. This is the world's own question, asked per pixel, so
segmenter, detector and classifier answer the same thing and the "spurious" variant's corner mark co-occurs with one
segmentation class; deciding it needs context (a higher-priority object elsewhere turns an object into background),
which is what L-CRP's context analysis measures.
"""
import numpy as np
import torch

from .dataset import normalize

BACKGROUND = "background"


def segment_classes(world) -> list[str]:
    """The segmenter's classes: background, then the world's classes."""
    return [BACKGROUND, *world.classes]


def label_map(dataset, index) -> np.ndarray:
    """Per-pixel class (H, W) int64 of item ``index``: label + 1 on its class-defining objects, 0 elsewhere."""
    return dataset.evidence_mask(index).astype(np.int64) * (dataset.label(index) + 1)


def label_maps(dataset, indices=None) -> torch.Tensor:
    """Per-pixel classes (N, H, W) of ``dataset`` (or of ``indices``)."""
    indices = range(len(dataset)) if indices is None else indices
    return torch.from_numpy(np.stack([label_map(dataset, i) for i in indices]))


@torch.no_grad()
def predict_segments(model, images, batch=250) -> torch.Tensor:
    """Predicted per-pixel classes (N, H, W) of uint8 NxHxWx3 ``images``."""
    return torch.cat([model(normalize(images[k:k + batch])).argmax(1) for k in range(0, len(images), batch)])


def iou_per_class(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> np.ndarray:
    """Intersection over union of each class over all pixels of the batch; NaN for a class in neither."""
    predicted, truth = predicted.flatten().long(), truth.flatten().long()
    counts = torch.bincount(truth * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, -1)
    counts = counts.double().numpy()
    intersection = np.diag(counts)
    union = counts.sum(0) + counts.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> float:
    """Mean over the classes present (in the prediction or the truth) of their IoU."""
    return float(np.nanmean(iou_per_class(predicted, truth, num_classes)))
