"""Contrastive targets ("class a rather than class b") and the parsing of targets.

LRP's backward pass is linear in the relevance it starts from, so a contrast's heatmap, concept relevances and
conditional heatmaps must equal the same combination of the two classes' own: that is the independent reference.
"""
import numpy as np
import pytest
import torch

import conceptscope as cs
from conceptscope.world.grading import contrast_pairs, grade_contrast
from tests.helpers import assert_unchanged, model_state


@pytest.fixture(scope="module")
def world():
    return cs.load_world("shapes")


@pytest.fixture(scope="module")
def xp(world):
    return cs.Explainer(world.model, classes=world.classes)


@pytest.fixture(scope="module")
def sample(world):
    image, label = world.dataset("test", n=4, seed=3)[1]
    return image, label


def close(found, expected, tol=1e-4):
    scale = float(expected.abs().max())
    assert float((found - expected).abs().max()) <= tol * scale, (found - expected).abs().max()


def test_difference_heatmap_is_the_difference_of_the_two_heatmaps(xp, sample):
    image, label = sample
    other = (label + 3) % 7
    contrast = xp.heatmap(image, cs.Contrast(label, other))
    close(contrast, xp.heatmap(image, label) - xp.heatmap(image, other))
    assert not torch.allclose(contrast, xp.heatmap(image, label), atol=1e-3)


def test_softmax_contrast_weighs_the_pair_by_the_probability_gradient(xp, sample):
    image, label = sample
    other = (label + 1) % 7
    logits, _ = xp.forward(image)
    p = torch.softmax(logits[0].double(), 0)
    za, zb = logits[0, label].double(), logits[0, other].double()
    expected = (p[label] * (1 - p[label]) / za) * xp.heatmap(image, label).double() \
        - (p[label] * p[other] / zb) * xp.heatmap(image, other).double()
    close(xp.heatmap(image, cs.Contrast(label, other, "softmax")).double(), expected)


def test_contrast_concepts_and_conditional_heatmaps_are_linear_too(xp, sample):
    image, label = sample
    other = (label + 2) % 7
    both, a, b = (xp.explain(image, t) for t in (cs.Contrast(label, other), label, other))
    assert both.target == cs.Contrast(label, other)
    layer = "features.15"
    close(both.concept_relevance(layer), a.concept_relevance(layer) - b.concept_relevance(layer))
    channels = [3, 7, 40]
    close(both.conditional_heatmaps("features.15", channels),
          a.conditional_heatmaps("features.15", channels) - b.conditional_heatmaps("features.15", channels))
    top = both.top_concepts("features.15", 3)
    ranked = (a.concept_relevance("features.15") - b.concept_relevance("features.15")).topk(3).indices.tolist()
    assert [c.channel for c in top] == ranked
    root = xp.composition(image, "features.15", top[0].channel, cs.Contrast(label, other), depth=1, top=3)
    assert root.relevance == pytest.approx(top[0].relevance, rel=1e-5)
    assert len(root.children) == 3


def test_contrasts_in_a_batch_and_by_name(xp, world):
    images = torch.stack([world.dataset("test", n=3, seed=5)[i][0] for i in range(3)])
    targets = [cs.Contrast("red circle", "cross"), 2, cs.Contrast(0, 1, "softmax")]
    batch = xp.heatmap(images, targets)
    for row, target in enumerate(targets):
        close(batch[row], xp.heatmap(images[row], target))
    close(xp.heatmap(images[0], "red circle"), xp.heatmap(images[0], 2))


@pytest.mark.parametrize("target, error, message", [
    (True, TypeError, "class index"),
    (3.0, TypeError, "float"),
    (torch.tensor(1.5), TypeError, "integer dtype"),
    (torch.tensor([1, 2]), ValueError, "2 targets for 1 images"),
    (torch.tensor([[1]]), ValueError, "one class per image"),
    (np.array([True]), TypeError, "class index"),
    ("nope", ValueError, "not a class name"),
    (7, ValueError, "valid targets: 0..6"),
    (-1, ValueError, "valid targets: 0..6"),
    (cs.Contrast(1, 1), ValueError, "two different classes"),
    (cs.Contrast("red circle", "red circle"), ValueError, "two different classes"),
    (cs.Contrast(1, 9), ValueError, "valid targets"),
    (cs.Contrast(1, "nope"), ValueError, "not a class name"),
    ({1: 2}, TypeError, "dict"),
    (object(), TypeError, "class index"),
    ([[1, 2]], TypeError, "list"),
])
def test_bad_targets_are_refused_clearly(xp, world, sample, target, error, message):
    before = model_state(world.model)
    with pytest.raises(error, match=message):
        xp.heatmap(sample[0], target)
    assert_unchanged(world.model, before)


@pytest.mark.parametrize("target", [2, np.int64(2), torch.tensor(2), torch.tensor([2]), np.array(2), "red circle"])
def test_every_spelling_of_a_class_explains_that_class(xp, sample, target):
    close(xp.heatmap(sample[0], target), xp.heatmap(sample[0], 2))


def test_contrast_kind_and_names_without_classes_are_checked(world, sample):
    with pytest.raises(ValueError, match="unknown contrast kind 'ratio'"):
        cs.Contrast(0, 1, "ratio")
    with pytest.raises(TypeError, match="knows no class names"):
        cs.Explainer(world.model).heatmap(sample[0], "red circle")
    with pytest.raises(ValueError, match="3 class names were given for a model with 7 classes"):
        cs.Explainer(world.model, classes=["a", "b", "c"]).heatmap(sample[0])


def test_other_methods_refuse_contrasts_lrp_methods_take_them(world, sample):
    methods = cs.methods.Methods(world.model, mean=world.mean, std=world.std)
    with pytest.raises(ValueError, match="explains one class at a time"):
        methods("saliency", sample[0], cs.Contrast(0, 1))
    found = methods("lrp_epsilon_plus_flat", sample[0], cs.Contrast(0, 1))
    close(found, cs.Explainer(world.model).heatmap(sample[0], cs.Contrast(0, 1)))


def test_contrast_pairs_hold_both_classes_evidence_on_different_objects(world):
    dataset = world.dataset("test", n=300, seed=7)
    pairs = contrast_pairs(dataset, 20)
    assert len(pairs) == 20
    for index, a, b in pairs:
        assert dataset.label(index) == a != b
        on_a, on_b = dataset.evidence_mask(index, a), dataset.evidence_mask(index, b)
        assert on_a.any() and on_b.any() and not (on_a & on_b).any()


def test_contrastive_heatmaps_put_a_on_its_evidence_and_b_on_its_own(world):
    """Over 100 fresh images with both classes' evidence: the positive relevance of "a rather than b" lies on a's
    objects, the negative on b's (measured: 0.60 and 0.50 of it, on 6.5 % and 6.1 % of the image)."""
    grades = grade_contrast(cs.Explainer(world.model), world.dataset("test", n=1000, seed=7), n=100)
    summary = grades.summary()
    assert summary["images"] == 100
    assert summary["positive_on_a"] > 0.5 and summary["positive_on_a"] > 5 * summary["area_a"]
    assert summary["negative_on_b"] > 0.4 and summary["negative_on_b"] > 5 * summary["area_b"]
    assert summary["a_positive"] >= 0.95 and summary["b_negative"] >= 0.75
    figure = grades.figure()
    plotted = figure.axes[0].collections[0].get_offsets()[:, 1]
    assert np.allclose(plotted, grades.positive_on_a)
