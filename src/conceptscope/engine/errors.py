"""The engine's public exceptions: each says which module or operation is at fault and what the user can do."""


class UntraceableModelError(TypeError):
    """The model cannot be traced by torch.fx (e.g. data-dependent control flow in ``forward``)."""


class UnsupportedOperationError(TypeError):
    """An operation on the relevance path has no LRP rule, so its relevance cannot be propagated correctly."""


class RelevanceError(ValueError):
    """An explanation came out wrong (non-finite, vanished or created relevance) and is refused rather than returned."""


class CanonizationError(ValueError):
    """The canonized copy of the model computes different outputs from the model itself."""


class RelevanceConservationWarning(UserWarning):
    """The heatmap's sum departs from the target logit more than the rules should absorb."""


class CanonizationWarning(UserWarning):
    """The canonized copy's logits differ from the model's by float32 rounding that the model amplifies."""
