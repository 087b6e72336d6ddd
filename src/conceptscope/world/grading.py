"""Grading attribution methods on the shapes world: images with the evidence masks of their labels, and the
leaderboard of every method on fresh (never trained on) images."""
import numpy as np
import torch

from ..evaluation import evaluate


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
