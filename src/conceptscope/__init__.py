"""conceptscope: concept-level explanations of PyTorch vision models (LRP, CRP, reference samples, SemanticLens)."""
from . import models
from .engine import ChannelConcept, Explainer, Explanation

__all__ = ["ChannelConcept", "Explainer", "Explanation", "models"]
__version__ = "0.1.0"
