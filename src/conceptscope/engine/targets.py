"""What an explanation starts from: one class's logit, or "class A rather than class B" (a contrast).

A target is given as a class index (an int, or a 0-d / one-element integer tensor or array), a class name where the
explainer knows the names, a :class:`Contrast`, or one of these per image. :func:`resolve_targets` checks them
against the logits; :func:`initial_relevance` turns them into the relevance LRP starts from at the output.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

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


Target = int | str | Contrast | None
Targets = Target | Sequence[Target] | torch.Tensor | np.ndarray


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


def resolve_targets(target: Targets, logits: torch.Tensor, names: Sequence[str] | None = None) -> list[int | Contrast]:
    """One checked target per sample: a class index or a :class:`Contrast` of indices; None explains each sample's
    predicted class. ``names`` (optional) are the class names a target may be given by."""
    if logits.dim() != 2:
        raise ValueError(f"the model's output has shape {tuple(logits.shape)}, not (batch, classes): conceptscope "
                         "explains class logits. For a dict or tuple output pick the logits with Explainer(model, "
                         "output=...); per-pixel outputs (segmentation) are not supported yet")
    batch, classes = logits.shape
    names = None if names is None else list(names)
    if names is not None and len(names) != classes:
        raise ValueError(f"{len(names)} class names were given for a model with {classes} classes")
    if target is None:
        return logits.argmax(1).tolist()
    single = (isinstance(target, (int, np.integer, str, Contrast))
              or isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0)
    if single:
        return [_one(target, classes, names)] * batch
    if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim > 1:
        raise ValueError(f"targets must be one class per image, got a tensor of shape {tuple(target.shape)}")
    if not isinstance(target, (Sequence, torch.Tensor, np.ndarray)):
        raise TypeError(f"a target must be a class index (int), a class name, a Contrast or one of these per image, "
                        f"got {type(target).__name__} {target!r}")
    targets = target.tolist() if isinstance(target, (torch.Tensor, np.ndarray)) else list(target)
    if len(targets) != batch:
        raise ValueError(f"got {len(targets)} targets for {batch} images")
    return [_one(t, classes, names) for t in targets]


def initial_relevance(logits: torch.Tensor, targets: Sequence[int | Contrast]) -> torch.Tensor:
    """The relevance LRP starts from at the output (B, classes): the target logit (zero elsewhere) for a class, and
    the pair's relevance for a :class:`Contrast` (see its kinds)."""
    initial = torch.zeros_like(logits)
    rows = torch.arange(len(targets), device=logits.device)
    if all(isinstance(t, int) for t in targets):
        initial[rows, targets] = logits[rows, targets]
        return initial
    for row, target in enumerate(targets):
        if isinstance(target, int):
            initial[row, target] = logits[row, target]
        elif target.kind == "difference":
            initial[row, target.a] = logits[row, target.a]
            initial[row, target.b] = -logits[row, target.b]
        else:
            probabilities = torch.softmax(logits[row].detach().double(), 0)
            pa, pb = probabilities[target.a], probabilities[target.b]
            initial[row, target.a] = (pa * (1 - pa)).to(logits.dtype)
            initial[row, target.b] = (-pa * pb).to(logits.dtype)
    return initial


def describe(target: int | Contrast, names: Sequence[str] | None = None) -> str:
    """A readable name of a resolved target: the class name (or "class i"), or "A rather than B"."""
    def name(index):
        return names[index] if names is not None else f"class {index}"
    if isinstance(target, Contrast):
        return f"{name(target.a)} rather than {name(target.b)}"
    return name(target)
