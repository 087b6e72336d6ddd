"""conceptscope: concept-level explanations of PyTorch vision models (LRP, CRP, reference samples, SemanticLens)."""
from . import models
from .atlas import Atlas
from .engine import ChannelConcept, Explainer, Explanation
from .widgets import explore
from .world import load_world

__all__ = ["Atlas", "ChannelConcept", "Explainer", "Explanation", "explore", "load_world", "models"]
__version__ = "0.1.0"
