"""SemanticLens: the concepts of an atlas in a foundation model's embedding space — search by text or image, labels,
interpretability scores, audits of a class against valid and spurious descriptions, comparison of two models."""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import UnknownLayerError
from . import formulas
from .embeddings import embed_concepts
from .foundation import FoundationModel
from .references import CROPS
from .results import Audit, AuditedConcept, Comparison, ConceptLabel, ConceptPair, LayerAudit, LayerScores, SearchHit

if TYPE_CHECKING:
    from ..atlas import Atlas

#: one layer, some layers, or None for all of them
Layers = str | Sequence[str] | None

#: templates of audit() by default (and of any call given them). Each text becomes the mean of its prompts minus the
#: mean of the empty prompts ("a picture of ", ...): what the text adds to the template. A similarity above 0 then means
#: "closer to this text than to the bare template", a zero point that does not depend on the foundation model's overall
#: level of image-text similarity (raw CLIP similarities crowd together: ~0.2-0.3 for open_clip ViT-B-32, ~0.8 for the
#: shapes world's tiny CLIP). search() and label() embed texts as they are by default, which ranked and labelled best
#: on the shapes world.
TEMPLATES = ("a picture of {}", "a photo of {}", "an image of {}")
#: label(): a concept gets its best vocabulary entry when its similarity (layer mean taken out) is at least this ...
LABEL_THRESHOLD = 0.0
#: ... and beats the runner-up by at least this (else no label): near-ties are no label
LABEL_MARGIN = 0.01
#: audit(): a concept whose alignment (template-corrected cosine) with every description is below this is "unexpected"
AUDIT_THRESHOLD = 0.0
#: compare(): a concept whose best match in the other model has a lower cosine (concept embeddings) is unique
COMPARE_THRESHOLD = 0.9


def _positive(value):
    """Whether ``value`` is a positive integer (booleans are not integers here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _is_image(item):
    return hasattr(item, "convert") or (isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim in (2, 3))


class SemanticLens:
    """The concepts (channels) of ``atlas``'s layers embedded with ``foundation`` (a :class:`FoundationModel`).

    Per concept, its top-``n`` reference samples (``mode`` "relevance": RelMax, or "activation": ActMax; ``n`` is
    capped at the atlas' k) are cut by ``crop`` — "relevance" (the atlas' relevance-cropped references), "window" (a
    square of ``window`` x the image side around the activation maximum) or "none" (whole images) — and embedded in
    batches of ``batch_size``. The embeddings are cached in the atlas directory (see :mod:`.embeddings`): a second
    lens with the same settings loads them. ``layers`` (default: all of the atlas) are the concepts covered.

    Attributes: ``embeddings`` ``{layer: LayerEmbeddings}`` (reference embeddings (C, n, D), validity mask (C, n),
    dataset indices, concept embeddings (C, D)), ``cache`` (the cache file) and ``from_cache``.
    """

    def __init__(self, atlas: Atlas, foundation: FoundationModel, layers: Layers = None, n: int = 16,
                 mode: str = "relevance", crop: str = "relevance", window: float = 0.5, batch_size: int = 256,
                 progress: bool = True):
        from ..atlas import Atlas  # here: the atlas package imports the engine, which this module need not load

        if not isinstance(atlas, Atlas):
            raise TypeError(f"atlas must be a conceptscope Atlas (Atlas.build(...) or Atlas.load(...)), got "
                            f"{type(atlas).__name__}")
        if not isinstance(foundation, FoundationModel):
            hint = (f"; to load the open_clip model {foundation!r} use cs.semantics.clip({foundation!r}, "
                    "pretrained=...)" if isinstance(foundation, str) else "")
            raise TypeError(f"foundation must be a FoundationModel (e.g. world.clip, or cs.semantics.clip('ViT-B-32', "
                            f"'laion2b_s34b_b79k')), got {type(foundation).__name__}{hint}")
        layers = list(atlas.layers) if layers is None else [layers] if isinstance(layers, str) else list(layers)
        if not layers:
            raise ValueError("layers is empty: give None (all layers of the atlas) or some of "
                             f"{', '.join(atlas.layers)}")
        for layer in layers:
            if layer not in atlas.layers:
                raise UnknownLayerError(f"the atlas has no layer {layer!r}; its layers: {', '.join(atlas.layers)}")
        if not _positive(n):
            raise ValueError(f"n must be a positive number of references per concept, got {n!r}")
        if mode not in atlas.modes:
            raise ValueError(f"the atlas has no mode {mode!r}; its modes: {', '.join(atlas.modes)}")
        if crop not in CROPS:
            raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(map(repr, CROPS))}")
        if crop == "window" and not (isinstance(window, numbers.Real) and not isinstance(window, bool)
                                     and 0 < window <= 1):
            raise ValueError(f"window must be a fraction of the image side in (0, 1], got {window!r}")
        if not _positive(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.atlas, self.foundation = atlas, foundation
        self.layers = [layer for layer in atlas.layers if layer in layers]  # a set of concepts: the atlas' order
        self.n, self.mode, self.crop, self.window = min(int(n), atlas.k), mode, crop, float(window)
        self.batch_size = int(batch_size)
        self.embeddings, self.cache, self.from_cache = embed_concepts(
            atlas, foundation, self.layers, self.n, mode, crop, self.window, self.batch_size, progress)

    def __repr__(self) -> str:
        return (f"SemanticLens({self.foundation.name!r}, layers={self.layers}, n={self.n}, mode={self.mode!r}, "
                f"crop={self.crop!r})")

    # -- inputs --------------------------------------------------------------------------------------------------------
    def _layers(self, layer):
        names = self.layers if layer is None else [layer] if isinstance(layer, str) else list(layer)
        for name in names:
            if name not in self.embeddings:
                raise UnknownLayerError(f"the lens has no layer {name!r}; its layers: {', '.join(self.layers)} (make a "
                                        "lens with layers=[...] to cover others of the atlas)")
        if not names:
            raise ValueError(f"no layer given; the lens's layers: {', '.join(self.layers)}")
        return names

    def _concepts(self, layer, centre=False):
        """Concept embeddings (K, D) of the layers (``centre``: each layer's mean reference taken out, see
        :func:`.scores.centred`), their ``(layer, channel)`` keys and which have references."""
        names = self._layers(layer)
        keys = [(name, channel) for name in names for channel in range(len(self.embeddings[name].concepts))]
        embeddings = torch.cat([formulas.centred(self.embeddings[name].references, self.embeddings[name].valid)
                                if centre else self.embeddings[name].concepts for name in names])
        present = torch.cat([self.embeddings[name].present for name in names])
        return embeddings, keys, present

    def _texts(self, texts, templates, what="text"):
        """Embeddings (T, D) of non-empty ``texts`` under ``templates`` (one encode_texts call)."""
        templates = formulas.check_templates(templates)
        if not texts:
            raise ValueError(f"no {what} given: pass a non-empty string or a list of them")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"every {what} must be a non-empty string, got {text!r}")
        self._check_readable(texts, what)
        encoded = self.foundation.encode_texts(formulas.prompts(texts, templates), self.batch_size).cpu()
        return formulas.text_embeddings(encoded, len(texts), templates)

    def _check_readable(self, texts, what):
        """Refuse a text made only of tokens the foundation model does not know (it would embed like any other such
        text and give confident nonsense); warn about unknown tokens the model ignores in the others."""
        for text, (unknown, count) in zip(texts, self.foundation.unknown_tokens(texts)):
            if count and len(unknown) == count:
                raise ValueError(f"the foundation model {self.foundation.name!r} cannot read the {what} {text!r}: it "
                                 f"knows none of its tokens ({', '.join(map(repr, unknown))}), so it would embed like "
                                 "any other unreadable text and match concepts at random; use words it was trained on")
            if unknown:
                warnings.warn(f"the foundation model {self.foundation.name!r} does not know the tokens "
                              f"{', '.join(map(repr, unknown))} of the {what} {text!r}; it reads only the rest",
                              stacklevel=4)

    def _queries(self, query, templates):
        """``(embeddings (Q, D), single)`` of a text, an image, or a list of texts or of images."""
        single = isinstance(query, str) or _is_image(query)
        items = [query] if single else list(query) if isinstance(query, (list, tuple)) else None
        if items is None:
            raise TypeError(f"query must be a text, an image (uint8 H x W x 3 array or PIL image) or a list of "
                            f"either, got {type(query).__name__}")
        if items and all(_is_image(item) for item in items):
            if templates is not None:
                raise ValueError("templates apply to text queries only; pass templates=None with images")
            return self.foundation.encode_images(items, self.batch_size).cpu().float(), single
        if any(_is_image(item) for item in items):
            raise TypeError("a query list must hold only texts or only images, not both")
        return self._texts(items, templates, "query"), single

    # -- operations ----------------------------------------------------------------------------------------------------
    def search(self, query: Any, layer: Layers = None, k: int = 10,
               templates: Sequence[str] | None = None) -> list[SearchHit] | list[list[SearchHit]]:
        """The ``k`` concepts (of ``layer``: a name, a list, or None for all the lens's layers) most similar to the
        query, as :class:`SearchHit` lists (best first; concepts without references are never returned).

        ``query``: a text, an image (uint8 H x W x 3 / PIL) or a list of texts or of images; one query gives one
        list, a list gives a list per query. Texts are embedded bare (``templates=None``) or, with ``templates``
        (strings with one ``{}``), as the mean over templates minus the template's null embedding.
        """
        if not _positive(k):
            raise ValueError(f"k must be a positive integer, got {k!r}")
        queries, single = self._queries(query, templates)
        embeddings, keys, present = self._concepts(layer)
        sims = formulas.similarities(queries, embeddings)
        order = formulas.rank(sims, present, int(k))
        found = [[SearchHit(*keys[i], float(row[i])) for i in ranked.tolist()] for row, ranked in zip(sims, order)]
        return found[0] if single else found

    def label(self, vocabulary: Sequence[str], templates: Sequence[str] | None = None,
              threshold: float = LABEL_THRESHOLD, margin: float = LABEL_MARGIN,
              layer: Layers = None) -> list[ConceptLabel]:
        """A :class:`ConceptLabel` per concept of ``layer`` (default all): its most similar ``vocabulary`` entry
        (status "labelled"), or no label (``label`` None, status "no label") when that similarity is below
        ``threshold`` or leads the runner-up by less than ``margin``; concepts without references (dead on the atlas'
        dataset) get status "no references" with NaN scores.

        Concepts are compared with the entries after each layer's mean reference embedding is taken out (what sets a
        concept apart from its layer), so a score above 0 (:data:`LABEL_THRESHOLD`) means the concept leans towards
        the entry more than its layer does; a label must lead the runner-up by :data:`LABEL_MARGIN`. ``templates``
        (e.g. :data:`TEMPLATES`) embed each entry as the mean of its prompts minus the empty prompts'; by default the
        entries are embedded as they are, which labelled the shapes world's selective channels best.
        """
        vocabulary = [vocabulary] if isinstance(vocabulary, str) else list(vocabulary)
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary has duplicate entries; give each label once")
        texts = self._texts(vocabulary, templates, "vocabulary entry")
        embeddings, keys, present = self._concepts(layer, centre=True)
        sims = formulas.similarities(embeddings, texts).masked_fill(~present[:, None], torch.nan)
        labels = formulas.assign_labels(sims, vocabulary, threshold, margin)
        return [ConceptLabel(layer_name, channel, name, status, None if best is None else vocabulary[best], score, gap,
                             tuple(row))
                for (layer_name, channel), (name, status, best, score, gap), row in zip(keys, labels, sims.tolist())]

    def scores(self, layer: str, seed: int = 0) -> LayerScores:
        """:class:`LayerScores` of every concept of ``layer``: clarity, polysemanticity and redundancy (see
        :mod:`.formulas` for the definitions), each relative to a random-set baseline (random sets of n references
        drawn, with ``seed``, from all of the layer's reference embeddings), with per-layer summaries."""
        (name,) = self._layers([layer])
        embedded = self.embeddings[name]
        stats = formulas.layer_statistics(embedded.references, embedded.valid)
        baseline = formulas.baselines(embedded.references, embedded.valid, seed)
        return LayerScores(name, tuple(range(len(embedded.concepts))), tuple(embedded.valid.sum(-1).tolist()),
                           *(tuple(stats[stat].tolist()) for stat in ("clarity", "polysemanticity", "redundancy")),
                           {stat: tuple((values - baseline[stat][0]).tolist()) for stat, values in stats.items()},
                           {stat: {"mean": mean, "std": std} for stat, (mean, std) in baseline.items()},
                           {stat: formulas.summarize(values, baseline[stat][0]) for stat, values in stats.items()})

    def audit(self, cls: int | str, valid: Sequence[str] = (), spurious: Sequence[str] = (), layer: Layers = None,
              n: int = 10, templates: Sequence[str] | None = TEMPLATES, threshold: float = AUDIT_THRESHOLD) -> Audit:
        """Audit class ``cls`` (name or index): its ``n`` most relevant concepts per layer (from the atlas' class
        statistics), each aligned (cosine; texts embedded as in :meth:`label`) with the ``valid`` and ``spurious``
        texts and judged "spurious" (best aligned with a spurious text), "valid" (with a valid one) or "unexpected"
        (no alignment reaches ``threshold``); plus, over all the layer's concepts, the share of the class's positive
        relevance going to each verdict. Returns an :class:`Audit`."""
        valid = [valid] if isinstance(valid, str) else list(valid)
        spurious = [spurious] if isinstance(spurious, str) else list(spurious)
        if not _positive(n):
            raise ValueError(f"n must be a positive integer, got {n!r}")
        texts = self._texts(valid + spurious, templates, "description (valid or spurious)")
        names = self._layers(layer)
        ranked = self.atlas.concepts_for(cls, names, max(self.atlas.layers[name] for name in names))
        audits = [self._audit_layer(name, ranked[name], texts, valid + spurious, len(valid), int(n), threshold)
                  for name in names]
        name = cls if isinstance(cls, str) else self.atlas.classes[int(cls)]
        return Audit(str(name), tuple(valid), tuple(spurious), float(threshold), tuple(audits))

    def _audit_layer(self, layer, ranked, texts, descriptions, n_valid, n, threshold):
        """The :class:`LayerAudit` of one layer from its concepts ranked for the class (all of them)."""
        embedded = self.embeddings[layer]
        sims = formulas.similarities(embedded.concepts, texts).masked_fill(~embedded.present[:, None], torch.nan)
        verdicts, match = formulas.verdicts(sims, n_valid, threshold)
        positive = torch.zeros(len(verdicts), dtype=torch.float64)
        positive[[score.channel for score in ranked]] = torch.tensor([max(score.relevance, 0.0) for score in ranked],
                                                                     dtype=torch.float64)
        total = float(positive.sum()) or float("nan")
        shares = {verdict: float(positive[torch.tensor([v == verdict for v in verdicts])].sum()) / total
                  for verdict in ("spurious", "valid", "unexpected")}
        concepts = tuple(
            AuditedConcept(layer, score.channel, score.relevance, score.share,
                           tuple(sims[score.channel, :n_valid].tolist()), tuple(sims[score.channel, n_valid:].tolist()),
                           verdicts[score.channel],
                           None if verdicts[score.channel] == "unexpected" else descriptions[match[score.channel]])
            for score in [score for score in ranked if embedded.present[score.channel]][:n])  # dead ones: no verdict
        return LayerAudit(layer, concepts, shares["spurious"], shares["valid"], shares["unexpected"],
                          tuple(concept for concept in concepts if concept.verdict == "unexpected"))

    def compare(self, other: SemanticLens, layer: Layers = None, other_layer: Layers = None,
                threshold: float = COMPARE_THRESHOLD) -> Comparison:
        """Match the concepts of this lens (``layer``, default all) to those of ``other`` (``other_layer``), a lens
        of another model embedded with the same foundation model: a :class:`Comparison` with each concept's best
        match by cosine of the concept embeddings, and the concepts of each side whose best match is below
        ``threshold`` (unique to that side)."""
        if not isinstance(other, SemanticLens):
            raise TypeError(f"compare needs another SemanticLens, got {type(other).__name__}")
        mine, theirs = self.foundation, other.foundation
        if (mine.name, mine.digest) != (theirs.name, theirs.digest):
            raise ValueError(f"the lenses embed with different foundation models ({mine.name!r}, digest "
                             f"{mine.digest[:12]}… vs {theirs.name!r}, digest {theirs.digest[:12]}…), so their "
                             "embeddings are not comparable: build both lenses with the same foundation model")
        embeddings, keys, present = self._concepts(layer)
        other_embeddings, other_keys, other_present = other._concepts(other_layer)
        sims = formulas.similarities(embeddings, other_embeddings)
        sims = sims.masked_fill(~(present[:, None] & other_present[None, :]), -torch.inf)
        rows, cols = sims.max(1), sims.max(0)
        matches = tuple(ConceptPair(*keys[i], *other_keys[j], float(rows.values[i]))
                        for i, j in enumerate(rows.indices.tolist()) if present[i] and other_present.any())
        unique = tuple(keys[i] for i in range(len(keys)) if present[i] and not rows.values[i] >= threshold)
        other_unique = tuple(other_keys[j] for j in range(len(other_keys))
                             if other_present[j] and not cols.values[j] >= threshold)
        return Comparison(float(threshold), matches, unique, other_unique)
