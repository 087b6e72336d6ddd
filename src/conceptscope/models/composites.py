"""Choice of zennit composites and canonizers for a model."""
import torch
from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlusFlat, LayerMapComposite, layer_map_base
from zennit.core import Composite
from zennit.rules import Epsilon, Gamma
from zennit.types import Convolution

from .canonizers import MergeBatchNormByDataFlow

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon", "cp_lrp", "attn_lrp")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def canonizers_for(model):
    """The canonizers a model needs: BatchNorm merged into the layer it follows (by data flow). Residual sums need no
    canonizer: the engine splits every addition in proportion to its terms (:mod:`conceptscope.engine.operations`)."""
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return [MergeBatchNormByDataFlow()]
    return []


def epsilon_composite(epsilon=1e-9, canonizers=None):
    """LRP-epsilon on every convolution and linear layer (LRP-0 for a negligible ``epsilon``): conserving everywhere,
    so with no additive constants a heatmap sums to the target logit — the composite of conservation checks."""
    return LayerMapComposite(layer_map=_layer_map(Epsilon(epsilon), Epsilon(epsilon), epsilon), canonizers=canonizers)


def _layer_map(convolution, linear, stabilizer=1e-6):
    """zennit's base layer map (activations pass, sums and average pooling normalised, BatchNorm passes) with rules
    for convolutions and linear layers."""
    return [*layer_map_base(stabilizer), (Convolution, convolution), (torch.nn.Linear, linear)]


ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


class CPLRP(LayerMapComposite):
    """CP-LRP for vision transformers, as the AttnLRP authors' package lxt applies it to torchvision ViTs: Gamma rules
    on convolutions (``conv_gamma``) and linear layers (``linear_gamma``; lxt sweeps 0.1–100 and 0–1), LRP-0 on the
    attention's projections (lxt runs them as plain products), and the engine's operation rules for the rest —
    attention weights held constant (relevance through the values only), GELU and LayerNorm with the identity rule
    (the normalisation's standard deviation constant), residual sums split in proportion (Ali et al. 2022; Achtibat
    et al. 2024)."""

    attention = "values"  # the engine holds attention weights constant

    def __init__(self, conv_gamma=0.25, linear_gamma=0.05, canonizers=None):
        super().__init__(layer_map=_layer_map(Gamma(conv_gamma), Gamma(linear_gamma)), canonizers=canonizers)
        projection, by_layer = Epsilon(1e-12), self.module_map  # zennit keeps module_map as an attribute

        def module_map(ctx, name, module):
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in ATTENTION_PROJECTIONS:
                return projection
            return by_layer(ctx, name, module)

        self.module_map = module_map


class AttnLRP(LayerMapComposite):
    """AttnLRP (Achtibat et al. 2024): LRP-epsilon on convolutions and linear layers, and the engine's AttnLRP
    rules for attention — the softmax rule ``R_in = x (R - s sum R)`` (which absorbs part of the relevance by design)
    and the uniform rule for ``q k^T`` and ``A v`` (each operand half) — with GELU and normalisations as in CP-LRP.
    Needs attention written out (``nn.MultiheadAttention`` is, by the engine; fused ``scaled_dot_product_attention``
    is refused)."""

    attention = "attnlrp"

    def __init__(self, epsilon=1e-6, canonizers=None):
        super().__init__(layer_map=_layer_map(Epsilon(epsilon), Epsilon(epsilon)), canonizers=canonizers)


def check_normalisation(mean, std, channels=3):
    """Refuse a ``mean``/``std`` that is not ``channels`` finite numbers each, with every std > 0."""
    for name, values in (("mean", mean), ("std", std)):
        try:
            tensor = torch.as_tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            tensor = None
        if tensor is None or isinstance(values, str) or tensor.shape != (channels,) or not tensor.isfinite().all() \
                or (name == "std" and not (tensor > 0).all()):
            positive = ", each > 0" if name == "std" else ""
            raise ValueError(f"{name} must be {channels} finite numbers (one per input channel{positive}, as the "
                             f"inputs were normalised); got {values!r}"[:300])


def input_bounds(mean=IMAGENET_MEAN, std=IMAGENET_STD, shape=(1, 3, 1, 1)):
    """The lowest and highest normalised pixel values, for the box rule of the first layer."""
    check_normalisation(mean, std, shape[1])
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
    if name == "epsilon":
        return epsilon_composite(canonizers=canonizers)
    if name == "cp_lrp":
        return CPLRP(canonizers=canonizers)
    if name == "attn_lrp":
        return AttnLRP(canonizers=canonizers)
    if name == "epsilon_gamma_box":
        low, high = input_bounds(mean, std)
        return EpsilonGammaBox(low=low, high=high, canonizers=canonizers)
    raise ValueError(
        f"unknown composite {composite!r}; use one of {', '.join(map(repr, COMPOSITES))} or a zennit Composite instance"
    )
