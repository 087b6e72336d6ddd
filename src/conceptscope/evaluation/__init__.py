"""Graded explanations: pixel-level faithfulness, concept deletion, relevance-based pruning, sanity checks."""
from .concepts import ConceptCurves, concept_deletion
from .faithfulness import PerturbationCurves, insertion_deletion, linear_imputation, perturbation_curves, pixel_flipping
from .pruning import PruningCurves, channel_scores, prune, pruning_curves
from .sanity import (
                     METHODS,
                     RandomisationResult,
                     RandomLogitResult,
                     random_logit_check,
                     randomisation_check,
                     similarities,
)

__all__ = ["ConceptCurves", "PerturbationCurves", "concept_deletion", "insertion_deletion", "linear_imputation",
           "perturbation_curves", "pixel_flipping", "PruningCurves", "channel_scores", "prune", "pruning_curves",
           "METHODS", "RandomisationResult", "RandomLogitResult", "random_logit_check", "randomisation_check",
           "similarities"]
