"""Choice of zennit composites and canonizers for a model."""
import torch
from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlusFlat
from zennit.core import Composite

from .canonizers import MergeBatchNormByDataFlow

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def canonizers_for(model):
    """The canonizers a model needs: BatchNorm merged into the layer it follows (by data flow). Residual sums need no
    canonizer: the engine splits every addition in proportion to its terms (:mod:`conceptscope.engine.operations`)."""
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return [MergeBatchNormByDataFlow()]
    return []


def input_bounds(mean=IMAGENET_MEAN, std=IMAGENET_STD, shape=(1, 3, 1, 1)):
    """The lowest and highest normalised pixel values, for the box rule of the first layer."""
    mean = torch.tensor(mean).reshape(shape)
    std = torch.tensor(std).reshape(shape)
    return (0 - mean) / std, (1 - mean) / std


def make_composite(model, composite=None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Return a zennit composite for ``model``.

    ``composite`` is a zennit ``Composite`` (used as-is), or one of :data:`COMPOSITES` by name, or ``None`` for
    ``"epsilon_plus_flat"``; named composites get the canonizers the model needs. ``mean``/``std`` give the input
    normalisation, used for the box bounds of ``"epsilon_gamma_box"``.
    """
    if isinstance(composite, Composite):
        return composite
    name = composite or "epsilon_plus_flat"
    canonizers = canonizers_for(model)
    if name == "epsilon_plus_flat":
        return EpsilonPlusFlat(canonizers=canonizers)
    if name == "epsilon_alpha2_beta1":
        return EpsilonAlpha2Beta1(canonizers=canonizers)
    if name == "epsilon_gamma_box":
        low, high = input_bounds(mean, std)
        return EpsilonGammaBox(low=low, high=high, canonizers=canonizers)
    raise ValueError(
        f"unknown composite {composite!r}; use one of {', '.join(map(repr, COMPOSITES))} or a zennit Composite instance"
    )
