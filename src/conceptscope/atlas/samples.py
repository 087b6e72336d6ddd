"""One dataset item as the atlas, the lens and the widgets use it: the model input, its label and its picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..render import picture_of, to_rgb


@dataclass(frozen=True)
class Sample:
    """Item ``index`` of a dataset: the model ``image`` (C, H, W), its ``label`` (None: the item has none) and the
    ``picture`` shown for it (uint8 H, W, 3)."""

    index: int
    image: torch.Tensor
    label: int | None
    picture: np.ndarray


def split_item(item, index: int, target: str | None) -> tuple[torch.Tensor, int | None]:
    """``(image tensor, label or None)`` of a dataset item: an ``(image, label, ...)`` tuple or a bare image; with
    ``target="label"`` an item without a label is an error."""
    image, label = (item[0], item[1] if len(item) > 1 else None) if isinstance(item, (tuple, list)) else (item, None)
    if target == "label" and label is None:
        raise ValueError(f"dataset item {index} has no label; use target='prediction' or a dataset of (image, label)")
    return torch.as_tensor(image), None if label is None else int(label)


def load_sample(dataset, index: int, target: str | None = None) -> Sample:
    """Item ``index`` of ``dataset`` as a :class:`Sample`. The picture is the dataset's own (``raw_image(index)``,
    grey turned into RGB) where it has one, else the model input min-max scaled."""
    image, label = split_item(dataset[index], index, target)
    raw_image = getattr(dataset, "raw_image", None)
    picture = picture_of(image) if raw_image is None else to_rgb(np.asarray(raw_image(index)))
    return Sample(index, image, label, picture)
