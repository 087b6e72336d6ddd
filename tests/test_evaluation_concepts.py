"""Concept deletion: exact values at the classifier's linear layers, fills, insertion, the shapes world's ranking."""
import matplotlib
import numpy as np
import pytest
import torch

from conceptscope.evaluation import concept_deletion

from .helpers import assert_unchanged, model_state

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def images(world):
    dataset = world.dataset("test", n=6)
    return torch.stack([dataset[i][0] for i in range(6)])


def test_deleting_the_target_logit_leaves_zero(world, xp, images):
    before = model_state(world.model)
    curves = concept_deletion(xp, images, "classifier.2", orders=["relevance"], counts=[0, 1])
    logits = world.model(images).detach()
    # BatchNorm merged into the convolutions: equal up to float rounding
    np.testing.assert_allclose(curves.curves["relevance"][:, 0], logits.max(1).values.numpy(), rtol=1e-4)
    np.testing.assert_array_equal(curves.curves["relevance"][:, 1], 0)  # the target is its own most relevant unit
    assert_unchanged(world.model, before)


def test_deleting_hidden_units_matches_the_hand_computed_logit(world, xp, images):
    """classifier.0 → ReLU → classifier.2: switching unit c off removes W2[t, c] * relu(z_c) from logit t."""
    counts = [0, 1, 3, 10, 64]
    curves = concept_deletion(xp, images, "classifier.0", counts=counts, orders=["relevance", "activation"])
    model = world.model
    with torch.no_grad():
        hidden = model.classifier[0](model.avgpool(model.features(images)).flatten(1))
        weight, bias = model.classifier[2].weight.detach(), model.classifier[2].bias.detach()
    attribution = xp.attribute(images, layers=["classifier.0"], heatmaps=False)
    for order, per_unit in (("relevance", attribution.relevances["classifier.0"]),
                            ("activation", attribution.activations["classifier.0"])):
        for i, target in enumerate(curves.targets):
            ranking = torch.sort(per_unit[i], descending=True, stable=True).indices
            for column, k in enumerate(counts):
                kept = hidden[i].clone()
                kept[ranking[:k]] = 0
                expected = float(weight[target] @ kept.relu() + bias[target])
                assert curves.curves[order][i, column] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_mean_fill_and_insertion(xp, images):
    everything = concept_deletion(xp, images, "features.15", orders=["random"], counts=[64], fill="mean")
    scores = everything.curves["random"][:, 0]
    # all channels replaced by the same mean map: the images differ only in their target class
    same_target = everything.targets == everything.targets[0]
    np.testing.assert_allclose(scores[same_target], scores[same_target][0], rtol=1e-5)
    deletion = concept_deletion(xp, images, "features.15", orders=["relevance"], counts=[0, 64])
    insertion = concept_deletion(xp, images, "features.15", orders=["relevance"], counts=[0, 64], mode="insertion")
    np.testing.assert_allclose(insertion.curves["relevance"][:, ::-1], deletion.curves["relevance"], rtol=1e-5,
                               atol=1e-5)


def test_bad_input(xp, images):
    with pytest.raises(ValueError, match="unknown order 'gradient'"):
        concept_deletion(xp, images, "features.15", orders=["gradient"])
    with pytest.raises(ValueError, match="fill must be"):
        concept_deletion(xp, images, "features.15", fill="noise")
    with pytest.raises(ValueError, match="from 0 to the layer's 64 channels"):
        concept_deletion(xp, images, "features.15", counts=[0, 65])
    with pytest.raises(KeyError, match="model has no layer 'features.99'"):
        concept_deletion(xp, images, "features.99")


def test_crp_relevance_order_hurts_more_than_random_on_the_shapes_world(xp, images):
    curves = concept_deletion(xp, images, "features.15", counts=[0, 1, 2, 4, 8, 16])
    assert curves.area_between("relevance", "random").mean() > 1.0
    assert curves.curves["relevance"][:, 3].mean() < curves.curves["random"][:, 3].mean() - 2
    figure = curves.figure()
    assert [line.get_label() for line in figure.axes[0].lines] == ["relevance", "activation", "random"]
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), curves.curves["relevance"].mean(0))
