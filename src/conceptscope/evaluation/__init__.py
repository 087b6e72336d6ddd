"""Graded explanations: pixel-level faithfulness, concept deletion, relevance-based pruning, sanity checks."""
from .faithfulness import PerturbationCurves, insertion_deletion, linear_imputation, perturbation_curves, pixel_flipping

__all__ = ["PerturbationCurves", "insertion_deletion", "linear_imputation", "perturbation_curves", "pixel_flipping"]
