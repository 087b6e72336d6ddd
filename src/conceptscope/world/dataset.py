"""Random-access torch dataset over generated shapes-world images, with ground truth per item."""

from functools import lru_cache

import numpy as np
import torch

from .concepts import ATTRIBUTES, CONCEPTS, CORNER_MARK
from .generator import caption, generate
from .rules import CLASSES, evidence

#: per-channel mean and std of the generated images (0..1 scale), used to normalise model inputs
MEAN = (0.257, 0.258, 0.248)
STD = (0.144, 0.129, 0.133)


def normalize(images, mean=MEAN, std=STD) -> torch.Tensor:
    """Turn images into normalised float32 model input.

    uint8 input (numpy or torch) is channel-last, HxWx3 or NxHxWx3, values 0..255 (as
    ``raw_image`` returns); float input is channel-first, 3xHxW or Nx3xHxW, values 0..1.
    """
    images = torch.as_tensor(images)
    if images.dtype == torch.uint8:
        images = images.movedim(-1, -3).float() / 255.0
    elif not images.is_floating_point():
        raise TypeError(f"expected uint8 or float images, got {images.dtype}")
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"expected 3 colour channels in an image or a batch, got shape {tuple(images.shape)}")
    mean = torch.tensor(mean, dtype=torch.float32, device=images.device).view(3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32, device=images.device).view(3, 1, 1)
    return ((images.float() - mean) / std).contiguous()


def render(dataset, indices=None):
    """The images ``indices`` (default: all) of ``dataset`` as one uint8 NxHxWx3 tensor, and the labels."""
    indices = range(len(dataset)) if indices is None else indices
    images = np.stack([dataset.raw_image(i) for i in indices])
    return torch.from_numpy(images), torch.tensor([dataset.label(i) for i in indices])


@lru_cache(maxsize=256)
def _scene(seed, index, size, mark_rates):
    """Recently used scenes (shared by all datasets; callers get copies of their arrays)."""
    return generate(seed, index, size, mark_rates)


class ShapesDataset(torch.utils.data.Dataset):
    """``n`` shapes-world images of ``size`` px drawn with ``seed``; item i is the same on every call.

    ``ds[i]`` is ``(image, label)``: a normalised float32 3xHxW tensor and the class index.
    ``mark_rates`` (one probability per class) enables the spurious corner mark; with it the
    concept list includes ``"corner_mark"``.
    """

    def __init__(self, n: int = 1000, seed: int = 0, size: int = 64, mark_rates=None, mean=MEAN, std=STD):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if size < 32:
            raise ValueError(f"size must be at least 32 px, got {size}")
        if mark_rates is not None and len(mark_rates) != len(CLASSES):
            raise ValueError(f"mark_rates needs one probability per class ({len(CLASSES)}), got {len(mark_rates)}")
        self.n, self.seed, self.size = int(n), int(seed), int(size)
        self.mark_rates = None if mark_rates is None else tuple(float(p) for p in mark_rates)
        self.mean, self.std = tuple(mean), tuple(std)
        self.classes = list(CLASSES)
        self.concepts = list(CONCEPTS) + ([CORNER_MARK] if self.mark_rates is not None else [])

    def _get(self, index):
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset index must be an integer, got {type(index).__name__}")
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for a dataset of {self.n} images")
        return _scene(self.seed, int(index) % self.n, self.size, self.mark_rates)

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        scene = self._get(index)
        return normalize(scene.image, self.mean, self.std), scene.label

    def label(self, index) -> int:
        """Class index of item ``index``."""
        return self._get(index).label

    def raw_image(self, index) -> np.ndarray:
        """The image as uint8 HxWx3 (not normalised)."""
        return self._get(index).image.copy()

    def objects(self, index) -> list[dict]:
        """One dict per object, left to right: shape, colour, texture, size, position and its bool ``mask``."""
        return [{**obj, "mask": obj["mask"].copy()} for obj in self._get(index).objects]

    def masks(self, index) -> dict[str, np.ndarray]:
        """Bool HxW mask per concept: the pixels of all objects having it (every concept, maybe empty)."""
        scene = self._get(index)
        masks = {concept: np.zeros((self.size, self.size), dtype=bool) for concept in self.concepts}
        for obj in scene.objects:
            for attribute in ATTRIBUTES:
                masks[obj[attribute]] |= obj["mask"]
        if scene.mark is not None:
            masks[CORNER_MARK] |= scene.mark
        return masks

    def evidence_mask(self, index, label: int | None = None) -> np.ndarray:
        """Bool HxW mask of the objects that make the rule of ``label`` (default: the image's label) true."""
        scene = self._get(index)
        mask = np.zeros((self.size, self.size), dtype=bool)
        for k in evidence(scene.objects, scene.label if label is None else label):
            mask |= scene.objects[k]["mask"]
        return mask

    def caption(self, index) -> str:
        """English description of the image, objects left to right."""
        scene = self._get(index)
        return caption(scene.objects, mark=scene.mark is not None)
