"""SemanticLens scored against the shapes world's ground truth: does a text query find the channels that really encode
the concept, and does ``label`` name what a channel really encodes?

The ground truth is channel selectivity measured from the world's object masks (:mod:`conceptscope.world.selectivity`:
a channel *encodes* a concept when its activation separates objects with the concept from all other objects, AUC >=
0.9), over the world's attribute values, the conjunctions its class rules name ("red circle", ...) and, in the
spurious variant, the corner mark. One module for the tests and the benchmark, so both quote the same figures.

Concepts are put into words as the tiny CLIP's training texts name them (:func:`phrase`): "yellow", "dotted", "a
circle", "a red circle", "blue striped", "a magenta mark in the corner".

Conjunctions count strictly: a label (or a retrieved channel) is right only for a concept the channel encodes. A
channel that encodes "red circle" but not "red" (it does not fire on red squares) is wrong when labelled "red" or
"circle"; that is why the vocabulary holds the conjunctions too (:func:`vocabulary`).
"""
from dataclasses import dataclass

from .concepts import CORNER_MARK, MARK_QUERY, SHAPES
from .rules import RULES
from .selectivity import THRESHOLD, object_activations, probe_dataset, selectivity

#: the conjunctions of the class rules ("red circle", "blue striped", ...), attribute values in rule order
CONJUNCTIONS = tuple(" ".join(value for _, value in rule.conditions) for rule in RULES if len(rule.conditions) > 1)


def phrase(concept):
    """The text for a concept, as the world's captions say it: shapes with an article ("a circle", "a red circle"),
    colours and textures bare ("yellow", "blue striped"), the corner mark as "a magenta mark in the corner"."""
    if concept == CORNER_MARK:
        return MARK_QUERY
    return f"a {concept}" if any(word in SHAPES for word in concept.split()) else concept


def concepts(world):
    """The concepts the ground truth covers: the world's concepts (attribute values, the corner mark in the spurious
    variant) and the class rules' conjunctions."""
    return list(world.concepts) + list(CONJUNCTIONS)


def vocabulary(world):
    """The label vocabulary: :func:`phrase` of every concept of :func:`concepts`, those no channel encodes included
    (sizes, positions, "plain"): a label has to win against all the words the world has."""
    return [phrase(concept) for concept in concepts(world)]


def ground_truth(world, model, layers, n=300, seed=None, threshold=THRESHOLD):
    """``{layer: {concept: [channels encoding it]}}`` for every concept of :func:`concepts`, measured on
    ``probe_dataset(world, n, seed)`` (one pass for all ``layers``); concepts no channel encodes are left out."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    names = concepts(world)
    found = object_activations(model, probe_dataset(world, n, seed), layers)
    scores = selectivity(found.activations, found.attributes, names)
    encoding = {}
    for layer in layers:
        columns = scores[layer] >= threshold
        encoding[layer] = {concept: columns[:, k].nonzero()[:, 0].tolist() for k, concept in enumerate(names)
                           if columns[:, k].any()}
    return encoding


@dataclass(frozen=True)
class Retrieval:
    """:func:`retrieval_at_k` of a layer: per encoded concept, whether an encoding channel is among the query's top
    ``k`` (``hits``) and the channels found (``found``); ``share`` is the share of hits (NaN without concepts)."""
    layer: str
    k: int
    hits: dict
    found: dict
    share: float


@dataclass(frozen=True)
class LabelAccuracy:
    """:func:`label_accuracy` of a layer: per selective channel, its label (``labels``) and whether that is a concept
    the channel encodes (``correct``); ``share`` is the share correct (NaN without selective channels)."""
    layer: str
    labels: dict
    correct: dict
    share: float


def _share(flags):
    return sum(flags) / len(flags) if flags else float("nan")


def retrieval_at_k(lens, layer, encoding, k=3, templates=None):
    """For each concept of ``encoding`` (``{concept: [channels]}`` of ``layer``, e.g. ``ground_truth(...)[layer]``)
    with at least one encoding channel, search ``layer`` for its :func:`phrase` and check whether an encoding channel
    is among the top ``k``. Returns a :class:`Retrieval`."""
    names = [concept for concept, channels in encoding.items() if channels]
    results = lens.search([phrase(concept) for concept in names], layer, k, templates) if names else []
    found = {concept: [hit.channel for hit in hits] for concept, hits in zip(names, results)}
    hits = {concept: bool(set(found[concept]) & set(encoding[concept])) for concept in names}
    return Retrieval(layer, k, hits, found, _share(list(hits.values())))


def label_accuracy(lens, layer, encoding, vocabulary, **options):
    """Among the selective channels of ``layer`` (those encoding at least one concept of ``encoding``), the share
    whose ``lens.label(vocabulary, **options)`` is the :func:`phrase` of a concept the channel encodes ("unknown"
    counts as wrong). Returns a :class:`LabelAccuracy`."""
    encodes = {}
    for concept, channels in encoding.items():
        for channel in channels:
            encodes.setdefault(channel, set()).add(phrase(concept))
    labels = {found.channel: found.label for found in lens.label(vocabulary, layer=layer, **options)}
    channels = sorted(encodes)
    correct = {channel: labels[channel] in encodes[channel] for channel in channels}
    return LabelAccuracy(layer, {channel: labels[channel] for channel in channels}, correct,
                         _share(list(correct.values())))
