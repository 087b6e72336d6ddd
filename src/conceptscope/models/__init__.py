"""Model loading, layer discovery and the choice of LRP composites and canonizers."""
from .composites import COMPOSITES, canonizers_for, make_composite
from .layers import AttentionHeads, blocks, check_layer, input_channels, layers
from .loading import MODELS, WeightsUnavailableError, checkpoint_path, load
from .random import without_constants

__all__ = [
    "AttentionHeads", "COMPOSITES", "MODELS", "WeightsUnavailableError", "blocks", "canonizers_for", "check_layer",
    "checkpoint_path", "input_channels", "layers", "load", "make_composite", "without_constants",
]
