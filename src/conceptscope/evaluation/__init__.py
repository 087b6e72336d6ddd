"""Graded explanations: localisation against ground-truth evidence masks, and ``evaluate`` over a dataset."""
from .leaderboard import Leaderboard, evaluate
from .localisation import METRICS, localisation

__all__ = ["METRICS", "Leaderboard", "evaluate", "localisation"]
