"""``load_world`` and ``World``: the entry point to a generated world and its shipped models."""

from functools import cached_property
from pathlib import Path

import torch
from safetensors.torch import load_file

from .concepts import CONCEPTS, CORNER_MARK
from .dataset import MEAN, STD, ShapesDataset, normalize
from .dense_nets import ShapesDetector, ShapesSegmenter
from .files import ASSETS
from .nets import ShapesResNet, ShapesVGG, ShapesViT
from .rules import CLASSES, RULES

#: world name -> its variants (None is the plain world)
WORLDS = {"shapes": (None, "spurious")}
#: default seeds per split; training uses only "train" and "val", so "test" and any other seed are unseen
SPLIT_SEEDS = {"train": 10_000, "val": 20_000, "test": 30_000}
#: the spurious variant draws the corner mark on this share of the training images of SPURIOUS_CLASS ...
SPURIOUS_CLASS = "green square"
SPURIOUS_RATE = 0.9
#: ... and on this share of the training images of every other class
SPURIOUS_BACKGROUND_RATE = 0.0
CORNER_MARK_MODES = ("none", "correlated", "all")
ARCHITECTURES = {"vgg": ShapesVGG, "resnet": ShapesResNet, "vit": ShapesViT}
#: the models shipped (and trained by ``train.py``) per variant
SHIPPED_MODELS = {None: ("vgg", "resnet", "vit"), "spurious": ("vgg",)}
#: the segmenter (background + the classes) and the detector (the classes), trained by ``train_dense.py``
DENSE_ARCHITECTURES = {"segmenter": ShapesSegmenter, "detector": ShapesDetector}
SHIPPED_DENSE_MODELS = {None: ("segmenter", "detector"), "spurious": ("segmenter",)}


def weights_path(variant: str | None, arch: str) -> Path:
    """File of the shipped weights of model ``arch`` trained on ``variant`` of the shapes world."""
    return ASSETS / f"shapes{'_' + variant if variant else ''}_{arch}.safetensors"


def _mark_rates(mode: str) -> tuple[float, ...]:
    if mode == "none":
        return (0.0,) * len(CLASSES)
    if mode == "all":
        return (1.0,) * len(CLASSES)
    return tuple(SPURIOUS_RATE if name == SPURIOUS_CLASS else SPURIOUS_BACKGROUND_RATE for name in CLASSES)


class World:
    """A generated world: classes, concepts, datasets with ground truth and the trained models.

    ``model`` (the VGG-style CNN), ``resnet`` and ``vit`` (plain variant only) are loaded on
    first access, in eval mode on the CPU; each ``World`` has its own instances.
    """

    def __init__(self, name: str = "shapes", variant: str | None = None):
        self.name, self.variant = name, variant
        self.rules = RULES
        self.classes = list(CLASSES)
        self.concepts = list(CONCEPTS) + ([CORNER_MARK] if variant == "spurious" else [])
        self.mean, self.std = MEAN, STD

    def __repr__(self):
        return (f"World({self.name!r}, variant={self.variant!r}, classes={len(self.classes)}, "
                f"concepts={len(self.concepts)})")

    def load_model(self, arch: str = "vgg") -> torch.nn.Module:
        """A fresh instance of the shipped model ``arch`` ("vgg", or "resnet" and "vit" in the plain variant;
        "segmenter" or, in the plain variant, "detector": see :mod:`.segmentation`, :mod:`.detection`), eval mode,
        CPU."""
        available = SHIPPED_MODELS[self.variant] + SHIPPED_DENSE_MODELS[self.variant]
        if arch not in available:
            raise ValueError(f"no model {arch!r} is shipped for variant {self.variant!r}; "
                             f"available: {', '.join(map(repr, available))}")
        path = weights_path(self.variant, arch)
        script = "train_dense" if arch in DENSE_ARCHITECTURES else "train"
        if not path.exists():
            raise FileNotFoundError(f"missing weights {path}; run `python -m conceptscope.world.{script}` to create "
                                    "them")
        if arch in DENSE_ARCHITECTURES:
            model = DENSE_ARCHITECTURES[arch](len(self.classes) + (arch == "segmenter"))
        else:
            model = ARCHITECTURES[arch](num_classes=len(self.classes))
        model.load_state_dict(load_file(path))
        return model.eval()

    @cached_property
    def model(self) -> torch.nn.Module:
        """The shipped VGG-style CNN with BatchNorm."""
        return self.load_model("vgg")

    @cached_property
    def resnet(self) -> torch.nn.Module:
        """The shipped small ResNet (torchvision BasicBlocks); plain variant only."""
        return self.load_model("resnet")

    @cached_property
    def vit(self) -> torch.nn.Module:
        """The shipped small vision transformer (attention written out, for AttnLRP); plain variant only."""
        return self.load_model("vit")

    @cached_property
    def clip(self):
        """The shipped tiny CLIP ("shapes-tiny-clip", an ``OpenClip``) for SemanticLens, eval mode, CPU."""
        from .clip import load_clip  # imported on first use: it loads open_clip

        return load_clip()

    def dataset(self, split: str = "test", n: int = 1000, seed: int | None = None, size: int = 64,
                corner_mark: str | None = None) -> ShapesDataset:
        """``n`` images of ``split`` ("train", "val", "test"; an explicit ``seed`` overrides the split's).

        ``corner_mark`` (variant "spurious" only): "correlated" (the training correlation),
        "none" or "all" (every image); by default "correlated" for the train split, else "none".
        """
        if split not in SPLIT_SEEDS:
            raise ValueError(f"unknown split {split!r}; available: {', '.join(map(repr, SPLIT_SEEDS))}")
        seed = SPLIT_SEEDS[split] if seed is None else seed
        if self.variant != "spurious":
            if corner_mark is not None:
                raise ValueError("corner_mark is only available in the 'spurious' variant")
            return ShapesDataset(n, seed, size)
        if corner_mark is None:
            corner_mark = "correlated" if split == "train" else "none"
        if corner_mark not in CORNER_MARK_MODES:
            raise ValueError(f"unknown corner_mark {corner_mark!r}; available: "
                             f"{', '.join(map(repr, CORNER_MARK_MODES))}")
        return ShapesDataset(n, seed, size, mark_rates=_mark_rates(corner_mark))

    def normalize(self, images) -> torch.Tensor:
        """Model input from uint8 HxWx3 / NxHxWx3 or float 0..1 3xHxW / Nx3xHxW images."""
        return normalize(images, self.mean, self.std)


def load_world(name: str = "shapes", variant: str | None = None) -> World:
    """The generated world ``name`` ("shapes"), plain (``variant=None``) or "spurious".

    The "spurious" variant adds a magenta corner mark that co-occurs with the class
    "green square" in the training split (90 % of its images, none of the others); its
    models are trained on that data.
    """
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; available worlds: {', '.join(map(repr, WORLDS))}")
    if variant not in WORLDS[name]:
        raise ValueError(f"unknown variant {variant!r} of world {name!r}; available variants: "
                         f"{', '.join(map(repr, WORLDS[name]))}")
    return World(name, variant)
