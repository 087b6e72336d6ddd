"""LRP on the shapes world, checked against its ground truth: relevance lands on the objects that define the class,
and heatmaps conserve the explained logit."""
import numpy as np
import pytest
import torch
from zennit.composites import EpsilonPlusFlat

import conceptscope as cs
from conceptscope.models import canonizers_for
from conceptscope.world.evaluation import relevance_in_masks
from conceptscope.world.grading import top_concepts_on_evidence

from .helpers import assert_unchanged, model_state, relative_error


@pytest.fixture(scope="module")
def test_set(world):
    dataset = world.dataset("test", n=200, seed=4242)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    masks = np.stack([dataset.evidence_mask(i) for i in range(len(dataset))])
    return images, masks


@pytest.mark.parametrize("arch", ["model", "resnet"])
def test_relevance_falls_on_the_evidence(world, test_set, arch):
    images, masks = test_set
    heatmaps = cs.Explainer(getattr(world, arch)).heatmap(images)
    inside, area = relevance_in_masks(heatmaps, masks)
    assert inside.mean() >= 3 * area.mean()


# Documented tolerances of bias-free EpsilonPlusFlat (see README): exact up to the epsilon stabilisers for the VGG
# (they matter only where denominators are tiny); in the ResNet
# the residual sum's Norm rule also sends relevance into branches whose value is only a merged BatchNorm bias, where
# the bias-free rules drop it.
@pytest.mark.parametrize("arch,median,worst", [("model", 1e-5, 5e-3), ("resnet", 0.01, 0.05)])
def test_heatmaps_conserve_the_logit(world, test_set, arch, median, worst):
    """With bias-free rules LRP is conserving: the heatmap sums to the explained logit."""
    model = getattr(world, arch)
    images = test_set[0]
    composite = EpsilonPlusFlat(zero_params="bias", canonizers=canonizers_for(model))
    attribution = cs.Explainer(model, composite).attribute(images)
    logits = attribution.logits.max(1).values
    deviation = (attribution.heatmaps.flatten(1).sum(1) - logits).abs() / logits.abs()
    assert deviation.median() <= median and deviation.max() <= worst


def test_explaining_leaves_the_world_model_unchanged(world, test_set):
    model = world.model
    before = model_state(model)
    xp = cs.Explainer(model)
    xp.heatmap(test_set[0][:4])
    with pytest.raises(ValueError, match="classes"):
        xp.heatmap(test_set[0][:4], target=len(world.classes))
    assert_unchanged(model, before)


@pytest.mark.parametrize("arch,layer", [("vgg", "features.15"), ("resnet", "layer3")])
def test_conditional_heatmaps_conserve_on_shipped_models(world, test_set, arch, layer):
    """Summed over all channels of a layer, the conditional heatmaps are the heatmap (float64)."""
    model = world.load_model(arch).double()
    explanation = cs.Explainer(model).explain(test_set[0][0].double(), layers=[layer])
    channels = explanation.activations[layer].shape[0]
    total = explanation.conditional_heatmaps(layer, range(channels)).sum(0)
    assert relative_error(total, explanation.heatmap) <= 1e-5


@pytest.mark.parametrize("arch,layer", [("model", "features.15"), ("resnet", "layer3.0.conv2")])
def test_top_concepts_are_on_the_evidence(world, arch, layer):
    """The conditional heatmaps of the 3 concepts ranked highest for the prediction put their positive relevance on
    the class-defining objects: >= 40 % of it on ~7 % of the image (measured: ~50 % on 50 images)."""
    shares, area = top_concepts_on_evidence(cs.Explainer(getattr(world, arch)), world.dataset("test", n=20, seed=4242),
                                            layer)
    inside = shares.mean(1)
    assert np.mean(inside) >= 0.4 and np.mean(inside) >= 3 * np.mean(area)
