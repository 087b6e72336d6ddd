"""Checks that refuse explanations which cannot be right, instead of returning them as if fine."""
import warnings

import torch

from .errors import CanonizationError, CanonizationWarning, RelevanceConservationWarning, RelevanceError

VANISHED = 1e-6  # total |relevance| below this share of |logit|: nothing reached the input
CREATED = 10.0  # |heatmap sum| above this many times |logit|: the rules created relevance
TOLERANCE = 1e-4  # largest relative difference between the canonized copy's logits and the model's


def check_input(images):
    """Refuse images with non-finite pixels: every relevance value would be NaN."""
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).sum())
        raise ValueError(f"the input has {bad} non-finite (NaN or inf) values; explanations of it would be NaN. "
                         "Replace or drop those pixels first")


def check_logits(logits, model):
    """Refuse a forward pass whose logits are not finite (e.g. a float16 model on the CPU)."""
    if not torch.isfinite(logits).all():
        raise RelevanceError(
            f"{type(model).__name__} produced non-finite logits on this input (dtype {logits.dtype}, device "
            f"{logits.device}); an explanation of them would be meaningless. Check the input's scale, or run the model "
            "in float32 (model.float()) if it is in half precision on this device")


def check_canonized(explained, reference, model, in_float64=None):
    """Refuse a canonized copy whose logits differ from the model's (relative difference above ``TOLERANCE``).

    ``in_float64`` (optional) returns the same relative difference computed in float64, which tells why. Where it
    vanishes (below 1e-9, or a millionth of the float32 difference: float64 rounds 5e8 times finer, while a canonizer
    that changes the model changes it as much in float64), the difference is float32 rounding that the network
    amplifies (deep random networks do), and only a warning says so. Where the copy passes in float64 but the float32
    difference is too large for that, the network's float32 logits are dominated by rounding: refused, with the advice
    to explain it in float64. Otherwise the copy is another model: refused.
    """
    error = relative_difference(explained, reference)
    if error <= TOLERANCE:
        return
    name = type(model).__name__
    exact = in_float64() if in_float64 is not None else None
    if exact is not None and (exact <= 1e-9 or exact <= 1e-6 * error):
        warnings.warn(
            f"{name} amplifies float32 rounding: merging its BatchNorms changes its logits by {error:.2g} (relative) "
            f"in float32 but by only {exact:.1g} in float64. Its explanations are as fragile as its logits; explain "
            "it in float64 (model.double() and double inputs) to be sure", CanonizationWarning, stacklevel=4)
        return
    if exact is not None and exact <= TOLERANCE:
        raise CanonizationError(
            f"{name}'s float32 logits are dominated by rounding: merging its BatchNorms, which computes the same "
            f"function, changes them by {error:.2g} (relative) in float32 and by {exact:.1g} in float64, so no "
            "float32 explanation of it can be trusted. Explain it in float64 (model.double() and double inputs)")
    raise CanonizationError(
        f"the canonized copy of {name} computes logits that differ from the model's by {error:.2g} (relative"
        + ("" if exact is None else f"; {exact:.2g} in float64") + "), so its explanation would be of another model. "
        "This happens when a canonizer (BatchNorm merging) does not fit the architecture: pass a zennit Composite "
        "without that canonizer, or report it")


def relative_difference(value, reference):
    """The largest absolute difference over the largest absolute reference value."""
    scale = reference.abs().max().clamp_min(torch.finfo(reference.dtype).tiny)
    return float((value - reference).abs().max() / scale)


def check_heatmaps(heatmaps, start, scale=None, what="heatmap"):
    """Refuse non-finite or vanished relevance; warn when a heatmap's sum departs far from its starting relevance.

    ``heatmaps`` (B, ...) and ``start`` (B,): the relevance each explanation started from (the target logit);
    ``scale`` (B,), e.g. the mean |logit|, keeps a target logit near zero from making any sum look created."""
    if not torch.isfinite(heatmaps).all():
        if torch.finfo(heatmaps.dtype).bits < 32:
            raise RelevanceError(
                f"the {what} contains non-finite relevance: the model runs in {heatmaps.dtype} on "
                f"{heatmaps.device}, whose range and precision are too small for the rules' divisions. Explain it in "
                "float32 (model.float() and float inputs), or run it in half precision on a GPU")
        raise RelevanceError(f"the {what} contains non-finite relevance although the logits are finite: a rule "
                             "divided by a vanishing denominator. Use a composite with stabilised rules (epsilon)")
    flat = heatmaps.reshape(heatmaps.shape[0], -1)
    start = start.reshape(-1).to(flat.dtype)
    magnitude = start.abs()
    vanished = (flat.abs().sum(1) < VANISHED * magnitude) & (magnitude > 0)
    if vanished.any():
        raise RelevanceError(
            f"the {what} is zero (below {VANISHED:g} of the target logit) although the logit is not: relevance "
            "vanished on its way to the input (e.g. a layer scale or a normalisation whose rule is missing). "
            "Check the model's operations against conceptscope's rules, or pass a composite with rules for them")
    scale = magnitude if scale is None else torch.maximum(magnitude, scale.reshape(-1).to(flat.dtype))
    ratio = flat.sum(1).abs() / torch.where(scale > 0, scale, torch.ones_like(scale))
    if (ratio > CREATED).any():
        warnings.warn(
            f"the {what} sums to {float(ratio.max()):.3g} times the target logit: the rules created relevance "
            "(through large biases, or an operation without a conserving rule). Treat it with care",
            RelevanceConservationWarning, stacklevel=3)
