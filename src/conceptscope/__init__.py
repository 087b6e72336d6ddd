"""conceptscope: concept-level explanations of PyTorch vision models (LRP, CRP, reference samples, SemanticLens)."""
from . import models, semantics
from .atlas import Atlas
from .engine import (
    CanonizationError,
    ChannelConcept,
    Explainer,
    Explanation,
    RelevanceConservationWarning,
    RelevanceError,
    UnsupportedOperationError,
    UnsupportedRuleError,
    UntraceableModelError,
)
from .errors import AtlasMismatchError, UnknownLayerError
from .models import WeightsUnavailableError
from .semantics import FoundationUnavailableError, SemanticLens
from .widgets import MissingBundleError, ProtocolError, explore
from .world import load_world

__all__ = [
    "Atlas", "AtlasMismatchError", "CanonizationError", "ChannelConcept", "Explainer", "Explanation",
    "FoundationUnavailableError", "MissingBundleError", "ProtocolError", "RelevanceConservationWarning",
    "RelevanceError", "SemanticLens", "UnknownLayerError", "UnsupportedOperationError", "UnsupportedRuleError",
    "UntraceableModelError", "WeightsUnavailableError", "explore", "load_world", "models", "semantics",
]
__version__ = "0.1.0"
