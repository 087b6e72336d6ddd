"""The displayable picture of an image: uint8 RGB (H, W, 3), from a model input or from grey or RGBA pixels."""

from __future__ import annotations

import numpy as np
import torch


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as RGB (H, W, 3): grey repeated, alpha dropped."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise ValueError(f"a picture must be uint8 of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got "
                         f"{pixels.dtype} of shape {pixels.shape}")
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]


def picture_of(image: torch.Tensor) -> np.ndarray:
    """A model input (C, H, W) min-max scaled to a uint8 RGB picture (H, W, 3), for images with no picture of their
    own."""
    image = torch.as_tensor(image).detach().float().cpu()
    image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-12)
    return to_rgb((image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())
