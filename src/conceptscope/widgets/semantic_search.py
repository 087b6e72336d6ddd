"""SemanticSearch: the concepts of a SemanticLens found by text, with labels, scores and references, and audits."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import traitlets

from ..engine.arguments import count
from ..render import encode_png
from ._protocol import Count, ProtocolError, RequestWidget, request

if TYPE_CHECKING:
    from ..semantics import SemanticLens

SCORES = ("clarity", "polysemanticity", "redundancy")


def _key(layer: str, channel: int) -> str:
    """A concept's key in the ``thumbnails`` trait, e.g. "features.15:3"."""
    return f"{layer}:{channel}"


def _label(labels: dict, layer: str, channel: int) -> dict[str, Any]:
    """The ``label`` ('' without a vocabulary) and ``label_score`` fields of a hit row."""
    label = labels.get((layer, channel), {})
    return {"label": label.get("label", ""), "label_score": label.get("score")}


def _texts(items: list, what: str) -> list[str]:
    """The non-blank strings of a message's list field, stripped (ProtocolError for anything but strings)."""
    if not all(isinstance(item, str) for item in items):
        raise ProtocolError(f"{what} must be a list of strings; got {items!r}")
    return [item.strip() for item in items if item.strip()]


class SemanticSearch(RequestWidget):
    """Search the concepts of ``lens`` (a :class:`~conceptscope.semantics.SemanticLens`) by text, and audit a class.

    A query gives the ``k`` most similar concepts (``hits``) of all the lens's layers or of one; each with its cosine
    similarity, its label from ``vocabulary`` (``lens.label``, computed once per vocabulary), its clarity,
    polysemanticity and redundancy (``lens.scores``, once per layer) and, a moment later, reference thumbnails
    (``thumbnails``: the atlas' relevance-cropped references in the lens's mode, RelMax or ActMax). Clicking a
    result sets ``selected`` and calls the ``on("select", callback)`` callbacks with its layer and channel (inside an
    :class:`Explorer`, the explorer shows it: conditional heatmap on its input, composition tree, gallery). The audit
    runs ``lens.audit`` for a class against valid and spurious descriptions and shows ``audit`` as bars per concept.

    ``templates`` (strings with one ``{}``) are used for the queries (see ``lens.search``). ``worker`` is the work
    thread to share with other views (the explorer's); ``explorer=`` is deprecated (it wired the view to an explorer,
    which now does that itself).
    """

    _view = "semantic_search"
    _view_sets = frozenset({"k"})

    layers = traitlets.List(traitlets.Unicode(), help="The lens's layers (the layer filter's choices).").tag(sync=True)
    layer = traitlets.Unicode(help="The layer searched ('' for all).").tag(sync=True)
    query = traitlets.Unicode(help="The last query searched.").tag(sync=True)
    k = Count(10, help="How many concepts a query finds.").tag(sync=True)
    vocabulary = traitlets.List(traitlets.Unicode(), help="Labels for the concepts ([]: no labels).").tag(sync=True)
    hits = traitlets.List(traitlets.Dict(), help="[{layer, channel, score, label, label_score, clarity, "
                                                 "polysemanticity, redundancy}] of the last query, most similar "
                                                 "first.").tag(sync=True)
    thumbnails = traitlets.Dict(help="{'layer:channel': [{index, image (PNG)}]}: references of the hits computed so "
                                     "far.").tag(sync=True)
    selected = traitlets.Dict(help="The selected concept {layer, channel}, or {}.").tag(sync=True)
    classes = traitlets.List(traitlets.Unicode(), help="The classes an audit can be run for.").tag(sync=True)
    audit = traitlets.Dict(help="The last audit (Audit.to_dict()), or {}.").tag(sync=True)

    def __init__(self, lens: SemanticLens, *, explorer: Any = None, vocabulary: Sequence[str] | None = None,
                 templates: Sequence[str] | None = None, k: int = 10, references: int = 4, **kwargs: Any):
        references = count("references", references)
        self.lens, self.templates, self.references = lens, templates, references
        self._labels: tuple[tuple[str, ...], dict] = ((), {})  # (vocabulary, {(layer, channel): label dict})
        self._scores: dict[str, dict[str, Any]] = {}  # layer -> LayerScores.to_dict()
        self._references: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (layer, channel) -> thumbnails
        if explorer is not None:
            warnings.warn("SemanticSearch(explorer=...) is deprecated: Explorer(lens=...) builds and wires the search",
                          DeprecationWarning, stacklevel=2)
            kwargs.setdefault("worker", explorer.worker)
        super().__init__(layers=list(lens.layers), k=k,
                         vocabulary=self._vocabulary([] if vocabulary is None else list(vocabulary)),
                         classes=[str(c) for c in lens.atlas.classes], **kwargs)
        if explorer is not None:
            self.on("select", explorer.select)

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict) -> str:
        if proposal["value"] and proposal["value"] not in self.layers:
            raise traitlets.TraitError(f"unknown layer {proposal['value']!r}; layers: {', '.join(self.layers)}")
        return proposal["value"]

    # -- Python API ---------------------------------------------------------------------------------------------------
    def search(self, query: str, layer: str | None = None) -> None:
        """Find the concepts most similar to ``query`` (of ``layer``, None for all layers); the view shows them."""
        with self._lock:
            self.push("search", lambda: self._search(query, layer or ""))

    def select(self, layer: str, channel: int) -> None:
        """Select concept (``layer``, ``channel``): ``selected``, the ``select`` callbacks (the explorer shows it)."""
        with self._lock:
            self._check_concept(layer, channel)
            self.selected = {"layer": layer, "channel": int(channel)}
            self._emit("select", layer, int(channel))

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Label the concepts with ``vocabulary`` from now on (the hits shown are relabelled)."""
        with self._lock:
            self.push("labels", lambda: self._relabel(list(vocabulary)))

    def run_audit(self, cls: str, valid: Sequence[str] = (), spurious: Sequence[str] = (),
                  layer: str | None = None) -> None:
        """Audit class ``cls`` (its name) against ``valid`` and ``spurious`` descriptions (of ``layer``, None: all)."""
        with self._lock:
            self.push("audit", lambda: self._audit(str(cls), list(valid), list(spurious), layer or ""))

    # -- work (worker thread) -----------------------------------------------------------------------------------------
    def _search(self, query: str, layer: str) -> dict[str, Any]:
        query = query.strip()
        if not query:
            raise ProtocolError("the query is empty: type what to look for, e.g. 'red'")
        hits = self.lens.search(query, layer=self._check_layer(layer), k=self.k, templates=self.templates)
        labels = self.labels_for(self.vocabulary)
        keys = [(hit.layer, hit.channel) for hit in hits]
        if any(key not in self._references for key in keys):  # the hits first, their references a moment later
            self.push("thumbnails", lambda: {"thumbnails": self._thumbnails(keys)})
        return {"query": query, "layer": layer, "hits": [self._row(hit, labels) for hit in hits],
                "thumbnails": {_key(*key): self._references[key] for key in keys if key in self._references}}

    def _row(self, hit: Any, labels: dict) -> dict[str, Any]:
        """A hit as the view shows it: similarity, label and scores."""
        scores = self._scores.get(hit.layer)
        if scores is None:
            scores = self._scores[hit.layer] = self.lens.scores(hit.layer).to_dict()
        position = scores["channels"].index(hit.channel)
        return {**hit.to_dict(), **_label(labels, hit.layer, hit.channel),
                **{name: scores[name][position] for name in SCORES}}

    def labels_for(self, vocabulary: list[str]) -> dict:
        """``{(layer, channel): ConceptLabel dict}`` for ``vocabulary`` ({} for none), computed once per vocabulary
        (the explorer names its concepts with them too)."""
        if tuple(vocabulary) != self._labels[0]:
            labels = self.lens.label(vocabulary) if vocabulary else []
            self._labels = (tuple(vocabulary), {(label.layer, label.channel): label.to_dict() for label in labels})
        return self._labels[1]

    def _relabel(self, vocabulary: list[str]) -> dict[str, Any]:
        vocabulary = self._vocabulary(vocabulary)
        labels = self.labels_for(vocabulary)
        hits = [{**row, **_label(labels, row["layer"], row["channel"])} for row in self.hits]
        return {"vocabulary": vocabulary, "hits": hits}

    def _thumbnails(self, keys: list[tuple[str, int]]) -> dict[str, list[dict[str, Any]]]:
        """The reference thumbnails of concepts ``keys`` (cached), as the atlas' gallery encodes them."""
        lens = self.lens
        for layer, channel in keys:
            if (layer, channel) not in self._references:
                found = lens.atlas.references(layer, channel, lens.mode, n=self.references, crop=True)
                self._references[(layer, channel)] = [{"index": r.index, "image": encode_png(r.image)} for r in found]
        return {_key(*key): self._references[key] for key in keys}

    def _audit(self, cls: str, valid: list, spurious: list, layer: str) -> dict[str, Any]:
        if cls not in self.classes:
            raise ProtocolError(f"unknown class {cls!r}; classes: {', '.join(self.classes)}")
        valid, spurious = _texts(valid, "valid"), _texts(spurious, "spurious")
        if not valid and not spurious:
            raise ProtocolError("give at least one valid or spurious description (comma separated)")
        audit = self.lens.audit(self.classes.index(cls), valid, spurious, layer=self._check_layer(layer))
        return {"audit": audit.to_dict()}

    # -- checks -------------------------------------------------------------------------------------------------------
    def _vocabulary(self, vocabulary: list) -> list[str]:
        vocabulary = _texts(vocabulary, "vocabulary")
        if len(set(vocabulary)) != len(vocabulary):
            raise ProtocolError(f"the vocabulary has duplicate entries: {vocabulary!r}")
        return vocabulary

    def _check_layer(self, layer: str) -> str | None:
        """``layer`` ('' for all layers: None) if the lens has it, else ProtocolError."""
        if layer and layer not in self.layers:
            raise ProtocolError(f"unknown layer {layer!r}; the lens's layers: {', '.join(self.layers)}")
        return layer or None

    def _check_concept(self, layer: str, channel: int) -> None:
        if not layer:
            raise ProtocolError(f"no layer given; the lens's layers: {', '.join(self.layers)}")
        self._check_layer(layer)
        channels = self.lens.atlas.layers[layer]
        if isinstance(channel, bool) or not 0 <= channel < channels:
            raise ProtocolError(f"channel {channel} is out of range for layer {layer!r} (0..{channels - 1})")

    # -- requests from the view ---------------------------------------------------------------------------------------
    @request("search", work="search", query=str, layer=str)
    def _on_search(self, query: str, layer: str) -> dict[str, Any]:
        return self._search(query, layer)

    @request("select", layer=str, channel=int)
    def _on_select(self, layer: str, channel: int) -> dict[str, Any]:
        self.select(layer, channel)
        return {"type": "selected", "layer": layer, "channel": channel}

    @request("vocabulary", work="labels", vocabulary=list)
    def _on_vocabulary(self, vocabulary: list) -> dict[str, Any]:
        return self._relabel(vocabulary)

    @request("audit", work="audit", cls=str, valid=list, spurious=list, layer=str)
    def _on_audit(self, cls: str, valid: list, spurious: list, layer: str) -> dict[str, Any]:
        return self._audit(cls, valid, spurious, layer)
