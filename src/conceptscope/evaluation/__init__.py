"""Graded explanations: localisation against ground-truth evidence masks and ``evaluate`` over a dataset;
pixel-level faithfulness, concept deletion, relevance-based pruning and sanity checks."""
from .concepts import ConceptCurves, concept_deletion
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

__all__ = ["METRICS", "ConceptCurves", "Leaderboard", "PerturbationCurves", "PruningCurves", "RandomLogitResult",
           "RandomisationResult", "channel_scores", "concept_deletion", "evaluate", "insertion_deletion",
           "linear_imputation", "localisation", "perturbation_curves", "pixel_flipping", "prune", "pruning_curves",
           "random_logit_check", "randomisation_check", "remove_top", "similarities"]
