"""PNG encoding of uint8 images, for sending pictures to the widgets as binary buffers."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_png(image: np.ndarray) -> bytes:
    """Encode a uint8 image of shape (H, W), (H, W, 3) or (H, W, 4) as PNG bytes (lossless)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8; got {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of PNG ``data`` as uint8 (H, W, 3) RGB (the inverse of :func:`encode_png` for pictures)."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
