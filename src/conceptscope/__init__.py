"""conceptscope: concept-level explanations of PyTorch vision models (LRP, CRP, reference samples, SemanticLens)."""
from . import methods, models, semantics
from .atlas import Atlas
from .engine import ChannelConcept, Explainer, Explanation
from .evaluation import evaluate
from .semantics import SemanticLens
from .widgets import compare, explore
from .world import load_world

__all__ = ["Atlas", "ChannelConcept", "Explainer", "Explanation", "SemanticLens", "compare", "evaluate", "explore",
           "load_world", "methods", "models", "semantics"]
__version__ = "0.1.0"
