"""What a user can pick to explain in a dense prediction: the predicted segments of a segmenter (connected components
of each predicted class) or the boxes of a detector, each with the target that explains it (L-CRP)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .targets import BACKGROUND, Output, Region

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in input pixels, x1 and y1 exclusive


@dataclass(frozen=True, eq=False)
class Segment:
    """One predicted object: its ``name``, its class index ``cls``, the ``target`` that explains it, its ``box`` and
    ``mask`` (bool (H, W) at the input's size; None for a detection, which is only a box) in input pixels, and a
    ``score`` (a segment's share of the image's pixels, a detection's confidence)."""

    name: str
    cls: int
    target: Region | Output
    box: Box
    mask: np.ndarray | None
    score: float

    def contains(self, x: int, y: int) -> bool:
        """Whether input pixel (column ``x``, row ``y``) lies on the segment (in the box, for a detection)."""
        if self.mask is not None:
            return bool(self.mask[y, x])
        x0, y0, x1, y1 = self.box
        return x0 <= x < x1 and y0 <= y < y1

    @property
    def area(self) -> int:
        """Pixels of the box."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    def to_dict(self, index: int) -> dict:
        """What a view shows of segment ``index``."""
        return {"index": index, "name": self.name, "cls": self.cls, "box": list(self.box), "score": self.score}


#: connected components smaller than this many input pixels are prediction noise, not objects to pick
MIN_PIXELS = 8


def predicted_segments(output: torch.Tensor, size: tuple[int, int], classes: Sequence[str] | None = None,
                       min_pixels: int = MIN_PIXELS) -> list[Segment]:
    """The segments of one image's dense output (classes, H, W): each connected component (8-neighbourhood) of at
    least ``min_pixels`` pixels predicted as one non-background class, largest first, on the input's grid ``size``
    (H, W); each is explained by ``Region(cls, its mask)`` — the class's output summed over that object alone."""
    if output.dim() != 3:
        raise ValueError(f"predicted segments need one image's dense output (classes, H, W), got shape "
                         f"{tuple(output.shape)}")
    predicted = output.detach().argmax(0)[None, None].float()
    if tuple(predicted.shape[2:]) != tuple(size):
        predicted = F.interpolate(predicted, size=tuple(size), mode="nearest")
    predicted = predicted[0, 0].long().cpu().numpy()
    segments = []
    for cls in np.unique(predicted):
        if cls == BACKGROUND:
            continue
        components, count = ndimage.label(predicted == cls, structure=np.ones((3, 3)))
        for label in range(1, count + 1):
            mask = components == label
            if mask.sum() < min_pixels:
                continue
            ys, xs = np.nonzero(mask)
            name = classes[cls] if classes is not None else f"class {cls}"
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            segments.append(Segment(name, int(cls), Region(int(cls), mask), box, mask, float(mask.mean())))
    segments.sort(key=lambda segment: (-segment.score, segment.box))
    return segments


def segment_at(segments: Sequence[Segment], x: int, y: int) -> int | None:
    """Index of the segment under input pixel (``x``, ``y``): the one whose mask holds it, or among boxes the smallest
    that holds it; None if none does."""
    hits = [k for k, segment in enumerate(segments) if segment.contains(x, y)]
    if not hits:
        return None
    return min(hits, key=lambda k: segments[k].area)
