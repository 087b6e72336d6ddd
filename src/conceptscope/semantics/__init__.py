"""SemanticLens: concepts embedded with a foundation model (CLIP) — search, labels, scores, audits, comparison."""
from .embeddings import LayerEmbeddings
from .foundation import FoundationModel, FoundationUnavailableError, OpenClip, clip
from .lens import SemanticLens
from .references import CROPS
from .results import Audit, AuditedConcept, Comparison, ConceptLabel, ConceptPair, LayerAudit, LayerScores, SearchHit
from .text_match import TextMatch

__all__ = ["Audit", "AuditedConcept", "CROPS", "Comparison", "ConceptLabel", "ConceptPair", "FoundationModel",
           "FoundationUnavailableError", "LayerAudit", "LayerEmbeddings", "LayerScores", "OpenClip", "SearchHit",
           "SemanticLens", "TextMatch", "clip"]
