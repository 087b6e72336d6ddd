"""What the SemanticLens operations return: small frozen dataclasses whose ``to_dict()`` is plain JSON (NaN -> None),
ready for widgets."""
import dataclasses
import math
from dataclasses import dataclass


def _plain(value):
    """``value`` as JSON-ready Python: dataclasses -> dicts, tuples -> lists, NaN and infinities -> None."""
    if dataclasses.is_dataclass(value):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _Result:
    def to_dict(self):
        """The fields as JSON-serialisable Python (tuples -> lists, NaN and infinities -> None)."""
        return _plain(self)


@dataclass(frozen=True)
class SearchHit(_Result):
    """A concept found by :meth:`SemanticLens.search`: its cosine ``score`` with the query."""
    layer: str
    channel: int
    score: float


@dataclass(frozen=True)
class ConceptLabel(_Result):
    """A concept's label from :meth:`SemanticLens.label`. ``status`` says which of three cases it is: "labelled"
    (``label`` is ``best``, the vocabulary entry the concept is most similar to), "no label" (``label`` is None:
    ``score``, that similarity, is below the threshold or ``margin``, its lead over the runner-up, below the margin)
    or "no references" (``label`` and ``best`` are None, scores NaN: the concept is dead on the atlas' dataset).
    ``scores`` holds the similarity to every vocabulary entry, in order. A vocabulary entry named like a status
    ("unknown", "no label") stays a label: only ``status`` and ``label is None`` mean "no label"."""
    layer: str
    channel: int
    label: str | None
    status: str
    best: str | None
    score: float
    margin: float
    scores: tuple


@dataclass(frozen=True)
class LayerScores(_Result):
    """Interpretability scores of the concepts of a layer (:meth:`SemanticLens.scores`), one column entry per channel
    in ``channels``: ``references`` (valid references), ``clarity``, ``polysemanticity``, ``redundancy`` (NaN where
    undefined); ``relative[name]``: the score minus its random-set baseline mean; ``baseline[name]``: ``{"mean",
    "std"}`` over random reference sets; ``summary[name]``: ``{"mean", "median", "baseline", "above_baseline"}`` (the
    share of concepts, among those with the score, above the baseline mean)."""
    layer: str
    channels: tuple
    references: tuple
    clarity: tuple
    polysemanticity: tuple
    redundancy: tuple
    relative: dict
    baseline: dict
    summary: dict


@dataclass(frozen=True)
class AuditedConcept(_Result):
    """One of a class's most relevant concepts in an audit: its mean ``relevance`` per sample of the class and
    ``share`` of the layer's absolute relevance for it; its alignment with each ``valid`` and each ``spurious``
    description (in the order given); ``verdict`` "valid", "spurious" or "unexpected" (matches neither above the
    threshold) and ``match``, the best-aligned description (None when unexpected)."""
    layer: str
    channel: int
    relevance: float
    share: float
    valid: tuple
    spurious: tuple
    verdict: str
    match: str | None


@dataclass(frozen=True)
class LayerAudit(_Result):
    """The audit of a class in one layer: its ``concepts`` (most relevant first), the share of the class's positive
    relevance (over all concepts of the layer) that goes to concepts judged spurious / valid / unexpected, and the
    ``unexpected`` ones among ``concepts``."""
    layer: str
    concepts: tuple
    spurious_share: float
    valid_share: float
    unexpected_share: float
    unexpected: tuple


@dataclass(frozen=True)
class Audit(_Result):
    """:meth:`SemanticLens.audit` of class ``cls`` against ``valid`` and ``spurious`` descriptions, per layer."""
    cls: str
    valid: tuple
    spurious: tuple
    threshold: float
    layers: tuple


@dataclass(frozen=True)
class ConceptPair(_Result):
    """A concept of one model and its best match (highest cosine ``score`` of the concept embeddings) in another."""
    layer: str
    channel: int
    other_layer: str
    other_channel: int
    score: float


@dataclass(frozen=True)
class Comparison(_Result):
    """:meth:`SemanticLens.compare`: every concept (with references) of this model and its best match in the other
    (``matches``), and the concepts, as ``(layer, channel)``, of this model (``unique``) and of the other
    (``other_unique``) whose best match on the other side scores below ``threshold``."""
    threshold: float
    matches: tuple
    unique: tuple
    other_unique: tuple
