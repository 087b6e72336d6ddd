"""Explainer kernels: LRP via zennit rules, conditional relevance (CRP), rankings, regions and composition."""
from .composition import CompositionNode
from .concepts import ChannelConcept
from .errors import (
    CanonizationError,
    CanonizationWarning,
    RelevanceConservationWarning,
    RelevanceError,
    UnsupportedOperationError,
    UntraceableModelError,
)
from .explainer import Attribution, Explainer
from .explanation import ConceptScore, Explanation
from .rules import UnsupportedRuleError
from .targets import Contrast, Output, Region

__all__ = ["Attribution", "CanonizationError", "CanonizationWarning", "ChannelConcept", "CompositionNode",
           "ConceptScore", "Contrast", "Explainer", "Explanation", "Output", "Region", "RelevanceConservationWarning",
           "RelevanceError", "UnsupportedOperationError", "UnsupportedRuleError", "UntraceableModelError"]
