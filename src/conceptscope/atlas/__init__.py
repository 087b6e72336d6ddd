"""Concept atlas: reference samples per concept over a dataset (RelMax/ActMax top-k, relevance-cropped) and per-class
concept statistics, built in one streaming, resumable, shardable pass and stored as a JSON manifest + safetensors."""
from ..errors import AtlasMismatchError
from .atlas import Atlas, ClassScore, Reference, References, Top
from .distributed import init_from_env
from .samples import Sample
from .store import AtlasBusyError, AtlasDamagedError

__all__ = ["Atlas", "AtlasBusyError", "AtlasDamagedError", "AtlasMismatchError", "ClassScore", "Reference",
           "References", "Sample", "Top", "init_from_env"]
