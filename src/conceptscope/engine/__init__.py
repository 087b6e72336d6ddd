"""Explainer kernels: LRP via zennit rules, conditional relevance (CRP), rankings, regions and composition."""
from .composition import CompositionNode
from .concepts import ChannelConcept
from .explainer import Attribution, Explainer
from .explanation import ConceptScore, Explanation
from .relevance_model import UntraceableModelError
from .rules import UnsupportedRuleError

__all__ = ["Attribution", "ChannelConcept", "CompositionNode", "ConceptScore", "Explainer", "Explanation",
           "UnsupportedRuleError", "UntraceableModelError"]
