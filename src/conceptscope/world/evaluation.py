"""Scoring explanations against the world's ground truth."""
import numpy as np
import torch


def relevance_in_masks(heatmaps, masks):
    """Per image: the share of positive relevance inside the mask, and the mask's share of the image area.

    ``heatmaps`` (N, H, W) relevance, ``masks`` (N, H, W) bool. Returns two float arrays of length N.
    """
    heatmaps = torch.as_tensor(heatmaps).clamp_min(0).double()
    masks = torch.as_tensor(np.asarray(masks), dtype=torch.bool)
    inside = (heatmaps * masks).flatten(1).sum(1)
    total = heatmaps.flatten(1).sum(1).clamp_min(1e-30)
    return (inside / total).numpy(), masks.flatten(1).double().mean(1).numpy()
