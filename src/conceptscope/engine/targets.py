"""What an explanation starts from: one class's logit, "class A rather than class B" (a contrast), a class inside a
region of a dense (segmentation) output, or one element of any output (e.g. one detection's score).

For class logits (B, classes), a target is a class index (an int, or a 0-d / one-element integer tensor or array), a
class name where the explainer knows the names, a :class:`Contrast`, or one of these per image. Dense outputs (B,
classes, H, W) take a :class:`Region`, and any output an :class:`Output`; a function of the output (B, ...) may choose
one target per image (e.g. :func:`largest_region`, :func:`peak`). :func:`resolve_targets` checks them against the
output; :func:`initial_relevance` turns them into the relevance LRP starts from (L-CRP's initial relevance for
regions and detections: the output itself where the target selects it, zero elsewhere).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KINDS = ("difference", "softmax")


@dataclass(frozen=True)
class Contrast:
    """Explain class ``a`` rather than class ``b`` (indices, or names where the explainer knows them).

    ``kind="difference"`` explains the logit difference z_a - z_b: LRP starts from z_a at a and -z_b at b, so the
    heatmap sums to z_a - z_b, positive where the input speaks for a, negative where it speaks for b.
    ``kind="softmax"`` starts from the gradient of a's probability restricted to the pair (as SGLRP, Iwana et al.
    2019): p_a (1 - p_a) at a and -p_a p_b at b, which weighs b by how much the model believes in it.
    """

    a: int | str
    b: int | str
    kind: str = "difference"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown contrast kind {self.kind!r}; choose one of {', '.join(KINDS)}")


@dataclass(frozen=True, eq=False)
class Region:
    """Explain class ``cls`` of a dense output (B, classes, H, W) inside a region: the sum of that class's output over
    ``mask`` (a bool (H, W) array of the output's size, or of a whole multiple or fraction of it, e.g. the input's,
    pooled onto the output's grid as covered fractions), or over the pixels where the model predicts ``cls`` when
    ``mask`` is None (L-CRP)."""

    cls: int | str
    mask: Any = None


@dataclass(frozen=True)
class Output:
    """Explain one element of the model's output for each image: ``index`` into the per-image output, e.g.
    ``Output((n, 4 + c))`` for the class-c score of detection n of a single-stage detector returning (B, N, 4 +
    classes), or ``Output((c, y, x))`` for one cell of a dense score map."""

    index: tuple

    def __post_init__(self):
        index = (self.index,) if isinstance(self.index, (int, np.integer)) else tuple(self.index)
        if not index or any(isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) for i in index):
            raise TypeError(f"Output index must be a tuple of ints into the per-image output, got {self.index!r}")
        object.__setattr__(self, "index", tuple(int(i) for i in index))


Target = int | str | Contrast | Region | Output | None
Targets = Target | Sequence[Target] | torch.Tensor | np.ndarray

#: the class a dense output's background has (as in torchvision's and the shapes world's segmenters)
BACKGROUND = 0


def largest_region(logits: torch.Tensor) -> list[Region]:
    """A target policy for segmenters (B, classes, H, W): per image, the :class:`Region` of the non-background class
    with the most predicted pixels, over its predicted mask (L-CRP's predicted region); an image where only the
    background (class 0) is predicted gets the background's region, so every image has a decision to explain."""
    if logits.dim() != 4:
        raise ValueError(f"the predicted-region target needs a dense (B, classes, H, W) output, got shape "
                         f"{tuple(logits.shape)}")
    counts = F.one_hot(logits.argmax(1).flatten(1), logits.shape[1]).sum(1)  # (B, classes) predicted pixels
    counts[:, BACKGROUND] = 0
    return [Region(int(cls) if count > 0 else BACKGROUND) for count, cls in zip(*counts.max(1))]


def peak(logits: torch.Tensor) -> list[Output]:
    """A target policy for dense score maps, e.g. a single-stage detector's centre heatmap (B, classes, H, W): per
    image, the :class:`Output` at its largest element (the strongest detection's score)."""
    flat = logits.flatten(1).argmax(1)
    return [Output(np.unravel_index(int(i), tuple(logits.shape[1:]))) for i in flat]


def target_class(target) -> int:
    """The class a resolved target explains, for per-class statistics: a class index itself, a contrast's or a
    region's class, an :class:`Output`'s first index (the class of a (classes, ...) score map)."""
    if isinstance(target, Contrast):
        return target.a
    if isinstance(target, Region):
        return target.cls
    if isinstance(target, Output):
        return target.index[0]
    return int(target)


def _class_index(value, classes, names):
    """One class given as an int, a 0-d/one-element integer tensor or array, or a name → its index, checked."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if array.size != 1:
            raise ValueError(f"a target tensor must hold one class index, got shape {tuple(array.shape)}; give one "
                             "target per image as a list or a 1-d tensor of the batch's length")
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"a target tensor must have an integer dtype, got {value.dtype}")
        value = int(array.reshape(()).item())
    if isinstance(value, str):
        if names is None:
            raise TypeError(f"target {value!r} is a class name, but this explainer knows no class names; pass "
                            "Explainer(model, classes=[...]) or give the class index")
        if value not in names:
            raise ValueError(f"target {value!r} is not a class name; the classes are {', '.join(map(repr, names))}")
        return names.index(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"a target must be a class index (int), a class name or a Contrast, got "
                        f"{type(value).__name__} {value!r}")
    if not 0 <= value < classes:
        raise ValueError(f"target {value!r} is not a class of the model, which has {classes} classes "
                         f"(valid targets: 0..{classes - 1})")
    return int(value)


def _one(value, classes, names):
    if isinstance(value, Contrast):
        a, b = _class_index(value.a, classes, names), _class_index(value.b, classes, names)
        if a == b:
            raise ValueError(f"a contrast needs two different classes, got {value.a!r} rather than {value.b!r}")
        return Contrast(a, b, value.kind)
    return _class_index(value, classes, names)


def _region(region, output, names):
    """A :class:`Region` with a class index and a float mask (H, W) on ``output``'s grid (one image: classes, H, W)."""
    cls = _class_index(region.cls, output.shape[0], names)
    if region.mask is None:
        mask = output.argmax(0) == cls
        if not mask.any():
            raise ValueError(f"the model predicts class {region.cls!r} nowhere in this image, so there is no "
                             "predicted region to explain; give Region(cls, mask) with a mask")
    else:
        mask = region.mask.detach() if isinstance(region.mask, torch.Tensor) else torch.from_numpy(np.asarray(
            region.mask))
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f"a Region's mask must be a bool (H, W) array, got {mask.dtype} of shape "
                             f"{tuple(mask.shape)}")
        if not mask.any():
            raise ValueError("a Region's mask is empty: it selects no pixel of the output to explain")
    mask = mask.to(output.device, output.dtype)
    grid = tuple(output.shape[1:])
    if tuple(mask.shape) != grid and not (all(m % o == 0 for m, o in zip(mask.shape, grid))
                                          or all(o % m == 0 for m, o in zip(mask.shape, grid))):
        raise ValueError(f"a Region's mask of size {tuple(mask.shape)} does not fit the output's grid {grid}: give "
                         "a mask of the output's size, or of a size that is a whole multiple of it (e.g. the input's)")
    if tuple(mask.shape) != grid:
        mask = F.adaptive_avg_pool2d(mask[None, None], output.shape[1:])[0, 0] if all(
            m >= o for m, o in zip(mask.shape, output.shape[1:])) else F.interpolate(
            mask[None, None], size=tuple(output.shape[1:]), mode="nearest")[0, 0]
    return Region(cls, mask)


def _output(target, output):
    if len(target.index) != output.dim() or any(not -n <= i < n for i, n in zip(target.index, output.shape)):
        raise ValueError(f"Output index {target.index} does not point into the per-image output of shape "
                         f"{tuple(output.shape)}")
    return target


def resolve_targets(target: Targets, logits: torch.Tensor, names: Sequence[str] | None = None) -> list:
    """One checked target per sample — a class index, a :class:`Contrast` of indices, a :class:`Region` with its mask
    on the output's grid, or an :class:`Output` — for an output ``logits`` (B, ...); None explains each sample's
    predicted class (class logits only); a function of the output (a policy such as :func:`largest_region`) chooses
    the targets. ``names`` (optional) are the class names a class may be given by."""
    if logits.dim() < 2:
        raise ValueError(f"the model's output has shape {tuple(logits.shape)}: conceptscope explains outputs with a "
                         "batch axis and at least one more (batch, classes, ...)")
    batch, classes = logits.shape[:2]
    dense = logits.dim() > 2
    names = None if names is None else list(names)
    if names is not None and len(names) != classes:
        raise ValueError(f"{len(names)} class names were given for a model with {classes} classes")
    if target is None and not dense:
        return logits.argmax(1).tolist()
    if callable(target):
        target = target(logits.detach())  # a target policy: one target per image, chosen from the output
    single = (target is None or isinstance(target, (int, np.integer, str, Contrast, Region, Output))
              or isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0)
    if single:
        targets = [target] * batch
    elif isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim > 1:
        raise ValueError(f"targets must be one class per image, got a tensor of shape {tuple(target.shape)}")
    elif not isinstance(target, (Sequence, torch.Tensor, np.ndarray)):
        raise TypeError(f"a target must be a class index (int), a class name, a Contrast or one of these per image, "
                        f"got {type(target).__name__} {target!r}")
    else:
        targets = target.tolist() if isinstance(target, (torch.Tensor, np.ndarray)) else list(target)
    if len(targets) != batch:
        raise ValueError(f"got {len(targets)} targets for {batch} images")
    resolved = []
    for row, one in enumerate(targets):
        if isinstance(one, Output):
            resolved.append(_output(one, logits[row]))
        elif dense and isinstance(one, Region) and logits.dim() == 4:
            resolved.append(_region(one, logits[row], names))
        elif dense:
            raise ValueError(
                f"the model's output has shape {tuple(logits.shape)}: a dense (e.g. per-pixel) output needs a target "
                "that says what to explain — cs.Region(cls, mask) for a class inside a region of a (B, classes, H, "
                f"W) output, or cs.Output(index) for one element (e.g. a detection's score); got {one!r}")
        elif isinstance(one, Region):
            raise ValueError(f"a Region explains a class inside a region of a dense (B, classes, H, W) output; this "
                             f"model's output has shape {tuple(logits.shape)}: give a class index")
        else:
            resolved.append(_one(one, classes, names))
    return resolved


def initial_relevance(logits: torch.Tensor, targets: Sequence) -> torch.Tensor:
    """The relevance LRP starts from at the output (B, ...): the target logit (zero elsewhere) for a class; the pair's
    relevance for a :class:`Contrast` (see its kinds); the class's output inside the mask for a :class:`Region`; the
    element for an :class:`Output`."""
    initial = torch.zeros_like(logits)
    rows = torch.arange(len(targets), device=logits.device)
    if all(isinstance(t, int) for t in targets):
        initial[rows, targets] = logits[rows, targets]
        return initial
    for row, target in enumerate(targets):
        if isinstance(target, int):
            initial[row, target] = logits[row, target]
        elif isinstance(target, Region):
            initial[row, target.cls] = logits[row, target.cls] * target.mask
        elif isinstance(target, Output):
            initial[row][target.index] = logits[row][target.index]
        elif target.kind == "difference":
            initial[row, target.a] = logits[row, target.a]
            initial[row, target.b] = -logits[row, target.b]
        else:
            probabilities = torch.softmax(logits[row].detach().double(), 0)
            pa, pb = probabilities[target.a], probabilities[target.b]
            initial[row, target.a] = (pa * (1 - pa)).to(logits.dtype)
            initial[row, target.b] = (-pa * pb).to(logits.dtype)
    return initial


def target_key(target) -> str:
    """A cache key of a target as given (masks by their content)."""
    if isinstance(target, Region) and target.mask is not None:
        mask = target.mask.detach().cpu().numpy() if isinstance(target.mask, torch.Tensor) else np.asarray(target.mask)
        return f"Region({target.cls!r}, {hashlib.blake2b(mask.tobytes(), digest_size=16).hexdigest()}{mask.shape})"
    return repr(target)
