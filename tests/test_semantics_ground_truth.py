"""SemanticLens against the shapes world's ground truth, with the shipped tiny CLIP (issue 6, item 5).

Ground truth: the channels of the plain VGG that encode each concept (AUC >= 0.9 of object activations, see
:mod:`conceptscope.world.lens_evaluation`), in a middle (features.8) and the last (features.15) conv layer. Checked: a
text query for an encoded concept puts an encoding channel in its top 3 (issue target: >= 80 % of the concepts);
``label`` names what a selective channel encodes (>= 70 %); relevance-cropped references find concepts at least as
well as fixed windows; ``audit`` finds the magenta corner mark planted in the spurious VGG's training ("green square"
images), which the clean VGG does not use. The figures measured are in the comments and in
``benchmarks/results/semantics_cpu.json``.

One set of images serves all: 400 test images of the spurious world with the mark drawn as in training (on 90 % of
the "green square" images), so the plain VGG's atlas gives both the ground-truth figures and the clean side of the
audit (the plain VGG's figures on unmarked images are the same to within one channel).
"""
import pytest
import torch

import conceptscope as cs
from conceptscope.semantics import SemanticLens
from conceptscope.world import lens_evaluation as evaluation

N_IMAGES, K, N_REFERENCES = 400, 16, 16
LAYERS = ["features.8", "features.15"]  # a middle and the last conv layer: the ground-truth figures
AUDIT_LAYERS = ["features.11", "features.15"]
SHARE_LAYER = "features.11"
RETRIEVAL_TARGET, LABEL_TARGET = 0.8, 0.7  # the targets
MARK = evaluation.phrase("corner_mark")


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def spurious_world():
    return cs.load_world("shapes", "spurious")


@pytest.fixture(scope="module")
def images(spurious_world):
    return spurious_world.dataset("test", n=N_IMAGES, corner_mark="correlated")


@pytest.fixture(scope="module")
def truth(world):
    return evaluation.ground_truth(world, world.model, LAYERS)


@pytest.fixture(scope="module")
def atlas(world, images, tmp_path_factory):
    return cs.Atlas.build(cs.Explainer(world.model), images, sorted(set(LAYERS + AUDIT_LAYERS)),
                          tmp_path_factory.mktemp("atlas") / "plain", k=K, batch_size=50, progress=False)


@pytest.fixture(scope="module")
def lenses(atlas, world):
    return {crop: SemanticLens(atlas, world.clip, n=N_REFERENCES, crop=crop, progress=False)
            for crop in ("relevance", "window")}


@pytest.fixture(scope="module")
def figures(lenses, truth, world):
    """``{(crop, layer): (Retrieval, LabelAccuracy)}`` with the lens's default label settings."""
    vocabulary = evaluation.vocabulary(world)
    return {(crop, layer): (evaluation.retrieval_at_k(lens, layer, truth[layer]),
                            evaluation.label_accuracy(lens, layer, truth[layer], vocabulary))
            for crop, lens in lenses.items() for layer in LAYERS}


def test_ground_truth_has_single_and_conjunction_concepts(truth):
    for layer in LAYERS:
        assert {"yellow", "dotted", "red circle", "blue striped", "green square"} <= set(truth[layer])


@pytest.mark.parametrize("layer", LAYERS)
def test_text_search_puts_an_encoding_channel_in_the_top_3(figures, layer):
    # measured: 6/6 concepts at features.8 and at features.15
    retrieval, _ = figures["relevance", layer]
    assert retrieval.share >= RETRIEVAL_TARGET, retrieval


@pytest.mark.parametrize("layer", LAYERS)
def test_labels_name_what_selective_channels_encode(figures, truth, layer):
    # measured: 0.84 (features.8) and 0.85 (features.15) of the selective channels. Without taking the layer's mean
    # reference embedding out of the concepts (lens.label does), 0.60 and 0.47: the common direction of all crops
    # outweighed what sets a concept apart
    _, labels = figures["relevance", layer]
    wrong = {channel: (labels.labels[channel], [concept for concept, channels in truth[layer].items()
                                                 if channel in channels])
             for channel, right in labels.correct.items() if not right}
    assert labels.share >= LABEL_TARGET, f"{labels.share:.2f} right; wrong (label, encodes): {wrong}"


def test_relevance_crops_find_concepts_at_least_as_well_as_windows(figures):
    # measured retrieval@3, relevance vs window crops: features.8 6/6 vs 5/6 (the windows miss "red"), features.15
    # 6/6 vs 6/6. Labels are a near tie the other way (0.84 vs 0.87 and 0.85 vs 0.89: 1 and 2 channels of 45 and 53),
    # both above the 0.7 (checked above for relevance crops)
    for layer in LAYERS:
        assert figures["relevance", layer][0].share >= figures["window", layer][0].share, layer
    assert any(figures["relevance", layer][0].share > figures["window", layer][0].share for layer in LAYERS)


@pytest.fixture(scope="module")
def spurious_lens(spurious_world, images, world, tmp_path_factory):
    atlas = cs.Atlas.build(cs.Explainer(spurious_world.model), images, AUDIT_LAYERS,
                           tmp_path_factory.mktemp("atlas") / "spurious", k=K, batch_size=50, progress=False)
    return SemanticLens(atlas, world.clip, n=N_REFERENCES, progress=False)


@pytest.fixture(scope="module")
def audits(spurious_lens, lenses):
    """``{model: {layer: LayerAudit}}`` of class "green square" against "a green square" and the mark."""
    found = {}
    for model, lens in (("spurious", spurious_lens), ("clean", lenses["relevance"])):
        audit = lens.audit("green square", valid=["a green square"], spurious=[MARK], layer=AUDIT_LAYERS)
        found[model] = {layer.layer: layer for layer in audit.layers}
    return found


def test_audit_finds_the_planted_corner_mark(audits):
    # measured: 0.14 (spurious VGG) vs 0.007 (clean VGG) at features.11. At features.15 the verdicts are a knife edge
    # (the class's top concepts there show the square and the mark in one crop): 0.12 vs 0 with these 400 images,
    # 0 vs 0 with 200, 600 or 1000, so the share is asserted at features.11 only.
    spurious, clean = audits["spurious"][SHARE_LAYER], audits["clean"][SHARE_LAYER]
    assert spurious.spurious_share >= clean.spurious_share + 0.05, (spurious, clean)
    assert any(concept.verdict == "spurious" for concept in spurious.concepts)


@pytest.mark.parametrize("layer", AUDIT_LAYERS)
def test_class_concepts_lean_towards_the_mark_only_in_the_spurious_model(audits, layer):
    # the relevance-weighted alignment of the class's top concepts with the mark's text, a continuous form of the
    # audit; measured -0.08 vs -0.41 (features.11) and -0.19 vs -0.32 (features.15), and alike for 200 to 1000 images
    def alignment(layer_audit):
        weights = [max(concept.relevance, 0.0) for concept in layer_audit.concepts]
        return sum(w * concept.spurious[0] for w, concept in zip(weights, layer_audit.concepts)) / sum(weights)
    assert alignment(audits["spurious"][layer]) >= alignment(audits["clean"][layer]) + 0.05
