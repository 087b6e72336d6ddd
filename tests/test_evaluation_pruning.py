"""Relevance-based pruning: exact zeroing, the channels chosen, the criteria's values, curves and bad input."""
import matplotlib
import numpy as np
import pytest
import torch

from conceptscope.evaluation import channel_scores, prune, pruning_curves

from .helpers import assert_unchanged, model_state

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def reference(world):
    dataset = world.dataset("val", n=14)
    return torch.stack([dataset[i][0] for i in range(14)]), torch.tensor([dataset.label(i) for i in range(14)])


def test_pruned_channels_output_exactly_zero_and_the_model_is_untouched(world, xp, reference):
    images, _ = reference
    before = model_state(world.model)
    scores = {"features.4": torch.arange(32.0), "features.8": torch.arange(64.0).flip(0)}
    model, pruned = prune(xp, scores, 0.25, scope="layer")
    assert pruned == {"features.4": 8, "features.8": 16}
    outputs = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
               for name in scores]
    with torch.no_grad():
        model(images[:4])
    for handle in handles:
        handle.remove()
    assert (outputs["features.4"][:, :8] == 0).all() and (outputs["features.4"][:, 8:].abs().sum((0, 2, 3)) > 0).all()
    assert (outputs["features.8"][:, 48:] == 0).all() and (outputs["features.8"][:, :48].abs().sum((0, 2, 3)) > 0).all()
    unpruned, _ = prune(xp, scores, 0.0)
    with torch.no_grad():
        torch.testing.assert_close(unpruned(images), world.model(images), rtol=1e-4, atol=1e-4)
    assert_unchanged(world.model, before)


def test_global_scope_ranks_shares_across_layers(xp):
    # shares: features.0 channel 3 ~ 7e-5 and the others 1/15, every features.4 channel 1/32: the 12 lowest of 48
    # are features.0 #3 and features.4 #0..#10 (ties in channel order)
    first = torch.ones(16)
    first[3] = 0.001
    model, pruned = prune(xp, {"features.0": first, "features.4": torch.ones(32)}, 0.25)
    assert pruned == {"features.0": 1, "features.4": 11}
    zero = [(model.features[0].weight[c] == 0).all().item() for c in range(16)]
    assert zero == [c == 3 for c in range(16)]
    zero = [(model.features[4].weight[c] == 0).all().item() for c in range(32)]
    assert zero == [c < 11 for c in range(32)]


def test_criteria_values(world, xp, reference):
    images, labels = reference
    relevance = channel_scores(xp, images, ["classifier.2"], "relevance", labels)["classifier.2"]
    # at the output layer the relevance is the target logit alone: each image adds sign(logit) to its label's share
    with torch.no_grad():
        logits = world.model(images)
    expected = torch.zeros(7, dtype=torch.float64)
    for logit, label in zip(logits, labels):
        expected[label] += float(torch.sign(logit[label])) / len(labels)
    torch.testing.assert_close(relevance, expected)
    weight = channel_scores(xp, images, ["features.0"], "weight")["features.0"]
    conv, norm = world.model.features[0], world.model.features[1]
    merged = conv.weight.detach() * (norm.weight / (norm.running_var + norm.eps).sqrt()).detach()[:, None, None, None]
    torch.testing.assert_close(weight, merged.abs().flatten(1).sum(1).double(), rtol=1e-5, atol=1e-6)
    activation = channel_scores(xp, images[:4], ["features.15"], "activation")["features.15"]
    _, found = xp.forward(images[:4], ["features.15"])
    torch.testing.assert_close(activation, found["features.15"].abs().double().mean((0, 2, 3)))
    random = [channel_scores(xp, images, ["features.15"], "random", seed=s)["features.15"] for s in (0, 0, 1)]
    assert torch.equal(random[0], random[1]) and not torch.equal(random[0], random[2])


def test_curves_and_bad_input(world, xp, reference):
    images, labels = reference
    test = world.dataset("test", n=30)
    test = torch.stack([test[i][0] for i in range(30)]), torch.tensor([test.label(i) for i in range(30)])
    curves = pruning_curves(xp, reference, test, rates=[0, 0.5], criteria=["relevance", "random"])
    with torch.no_grad():
        unpruned = float((world.model(test[0]).argmax(1) == test[1]).double().mean())
    assert curves.accuracy["relevance"][0] == curves.accuracy["random"][0] == unpruned
    assert curves.channels.tolist() == [0, 120] and curves.total == 240
    assert curves.accuracy["random"][1] < unpruned
    assert curves.tolerated(loss=1.0)["random"] == {"rate": 0.5, "channels": 120}
    figure = curves.figure()
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), 100 * curves.accuracy["relevance"])
    specialised = pruning_curves(xp, reference, test, rates=[0], criteria=["relevance"], classes=[0, 1])
    assert specialised.settings["test_images"] == int(torch.isin(test[1], torch.tensor([0, 1])).sum())
    with pytest.raises(ValueError, match="pruning rate must be in \\[0, 1\\)"):
        prune(xp, {"features.0": torch.zeros(16)}, 1.0)
    with pytest.raises(ValueError, match="pruning rates must be in \\[0, 1\\)"):
        pruning_curves(xp, reference, test, rates=[-0.1])
    with pytest.raises(ValueError, match="unknown criterion 'gradient'"):
        channel_scores(xp, images, ["features.0"], "gradient")
    with pytest.raises(ValueError, match="has no channels to prune"):
        channel_scores(xp, images, ["features.2"], "random")
    with pytest.raises(ValueError, match="no image has one of the classes"):
        pruning_curves(xp, reference, test, classes=[99])
