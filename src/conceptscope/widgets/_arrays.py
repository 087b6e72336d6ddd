"""Checking and converting the arrays users hand to widgets (numpy or torch) into numpy."""

from __future__ import annotations

import numpy as np


def to_numpy(value: object, name: str) -> np.ndarray:
    """A numpy view of a numpy array or torch tensor (detached, on the CPU)."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a numpy array or torch tensor; got {type(value).__name__}")
    return value


def _describe(arr: np.ndarray) -> str:
    return f"{arr.dtype} array of shape {tuple(arr.shape)}"


def as_image(image: object) -> np.ndarray:
    """An RGB image: uint8 of shape (H, W, 3)."""
    arr = to_numpy(image, "image")
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be a uint8 array of shape (H, W, 3); got {_describe(arr)}")
    return arr


def as_relevance(relevance: object, shape: tuple[int, int]) -> np.ndarray:
    """A relevance map: finite floats of shape ``shape`` (H, W)."""
    arr = to_numpy(relevance, "relevance")
    if not np.issubdtype(arr.dtype, np.floating) or arr.shape != tuple(shape):
        raise ValueError(
            f"relevance must be a float array of shape {tuple(shape)} (the image's H, W); "
            f"got {_describe(arr)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("relevance contains NaN or infinite values")
    return arr.copy()
