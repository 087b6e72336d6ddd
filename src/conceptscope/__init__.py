"""conceptscope: concept-level explanations of PyTorch vision models (LRP, CRP, reference samples, SemanticLens)."""
from . import methods, models, plot, semantics
from .atlas import Atlas, AtlasBusyError, AtlasDamagedError
from .engine import (
    CanonizationError,
    CanonizationWarning,
    ChannelConcept,
    Contrast,
    Explainer,
    Explanation,
    Output,
    Region,
    RelevanceConservationWarning,
    RelevanceError,
    UnsupportedOperationError,
    UnsupportedRuleError,
    UntraceableModelError,
)
from .errors import AtlasMismatchError, UnknownLayerError
from .evaluation import evaluate
from .models import WeightsUnavailableError
from .semantics import FoundationUnavailableError, SemanticLens
from .widgets import MissingBundleError, ProtocolError, compare, explore, perturb
from .world import load_world

__all__ = [
    "Atlas", "AtlasBusyError", "AtlasDamagedError", "AtlasMismatchError", "CanonizationError", "CanonizationWarning",
    "ChannelConcept", "Contrast", "Explainer", "Explanation", "FoundationUnavailableError", "MissingBundleError",
    "Output", "ProtocolError", "Region", "RelevanceConservationWarning", "RelevanceError", "SemanticLens",
    "UnknownLayerError", "UnsupportedOperationError", "UnsupportedRuleError", "UntraceableModelError",
    "WeightsUnavailableError", "compare", "evaluate", "explore", "load_world", "methods", "models", "perturb", "plot",
    "semantics"
]
__version__ = "0.1.0"
