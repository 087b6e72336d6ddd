"""conceptscope: concept-level explanations of PyTorch vision models (LRP, CRP, reference samples, SemanticLens)."""
from . import models, semantics
from .atlas import Atlas
from .engine import ChannelConcept, Explainer, Explanation
from .semantics import SemanticLens
from .widgets import explore
from .world import load_world

__all__ = ["Atlas", "ChannelConcept", "Explainer", "Explanation", "SemanticLens", "explore", "load_world", "models",
           "semantics"]
__version__ = "0.1.0"
