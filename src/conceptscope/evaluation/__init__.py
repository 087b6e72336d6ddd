"""Graded explanations: localisation against ground-truth evidence masks and ``evaluate`` over a dataset;
pixel-level faithfulness, concept deletion, relevance-based pruning, sanity checks and context use (L-CRP)."""
from .concepts import ConceptCurves, concept_deletion
from .context import ContextUse, context_use
from .faithfulness import (
    PerturbationCurves,
    insertion_deletion,
    linear_imputation,
    perturbation_curves,
    pixel_flipping,
    remove_top,
)
from .leaderboard import Leaderboard, evaluate
from .localisation import METRICS, localisation
from .pruning import PruningCurves, channel_scores, prune, pruning_curves
from .sanity import RandomisationResult, RandomLogitResult, random_logit_check, randomisation_check, similarities

__all__ = ["METRICS", "ConceptCurves", "ContextUse", "Leaderboard", "PerturbationCurves", "PruningCurves",
           "RandomLogitResult", "RandomisationResult", "channel_scores", "concept_deletion", "context_use", "evaluate",
           "insertion_deletion", "linear_imputation", "localisation", "perturbation_curves", "pixel_flipping", "prune",
           "pruning_curves", "random_logit_check", "randomisation_check", "remove_top", "similarities"]
