"""Attribution methods behind one interface: values against hand computations and independent references."""
import numpy as np
import pytest
import torch
from torch import nn

import conceptscope as cs
from conceptscope.methods import METHODS, Methods, attribute
from conceptscope.methods.perturbation import rise_masks
from tests.helpers import assert_unchanged, model_state


@pytest.fixture(scope="module")
def batch(world):
    data = world.dataset("test", n=3, seed=123)
    return torch.stack([data[i][0] for i in range(3)]), [data.label(i) for i in range(3)]


@pytest.fixture(scope="module")
def methods(world):
    return Methods(world.model, mean=world.mean, std=world.std)


class Linear(nn.Module):
    """logits = W . flatten(x): every gradient method has a closed form."""

    def __init__(self, shape=(3, 8, 8), classes=2):
        super().__init__()
        self.fc = nn.Linear(int(np.prod(shape)), classes, bias=False)
        torch.nn.init.normal_(self.fc.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return self.fc(x.flatten(1))


class GapNet(nn.Module):
    """conv -> ReLU -> global average pool -> linear: the CAM architecture, where Grad-CAM is CAM."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).mean((2, 3)))


def test_every_method_gives_finite_maps_of_the_input_size_and_leaves_the_model_unchanged(world, batch):
    model = world.model
    calls = []
    handle = model.features[0].register_forward_hook(lambda *args: calls.append(1))
    model.train()
    before = model_state(model)
    try:
        runner = Methods(model, mean=world.mean, std=world.std)
        x, labels = batch
        for name in METHODS:
            options = {"lime": {"samples": 20, "cell": 16, "progress": False}, "occlusion": {"progress": False,
                       "window": 16, "stride": 16}, "rise": {"masks": 40, "progress": False}}.get(name, {})
            maps = runner(name, x[:2], labels[:2], **options)
            assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all(), name
            assert maps.abs().flatten(1).amax(1).min() > 0, name
        assert_unchanged(model, before)
        assert calls == [] and model.training
    finally:
        handle.remove()
        model.eval()


def test_gradient_family_on_a_linear_model_equals_the_closed_form():
    model = Linear()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    w = model.fc.weight.detach().reshape(2, 3, 8, 8)
    targets = [0, 1]
    expected_gxi = (x * w[targets]).sum(1)
    assert torch.allclose(attribute(model, x, targets, "gradient_x_input"), expected_gxi, atol=1e-6)
    assert torch.allclose(attribute(model, x, targets, "saliency"), w[targets].abs().amax(1), atol=1e-6)
    # a linear model's IG from 0 is gradient x input, exactly
    assert torch.allclose(attribute(model, x, targets, "integrated_gradients", steps=4), expected_gxi, atol=1e-5)
    # gradient x input sums to the logit for a bias-free linear model
    logits = model(x)[[0, 1], targets]
    assert torch.allclose(expected_gxi.flatten(1).sum(1), logits, atol=1e-5)


def test_integrated_gradients_is_complete_on_the_shapes_cnn(methods, batch, world):
    x, labels = batch
    maps = methods("integrated_gradients", x, labels, steps=64)
    with torch.no_grad():
        logits = world.model(x)[range(3), labels] - world.model(torch.zeros_like(x))[range(3), labels]
    assert torch.allclose(maps.flatten(1).sum(1), logits, rtol=0.02, atol=0.05), (maps.flatten(1).sum(1), logits)


def test_gradient_x_input_matches_autograd_on_the_shapes_cnn(methods, batch, world):
    x, labels = batch
    inputs = x.clone().requires_grad_(True)
    world.model(inputs)[range(3), labels].sum().backward()
    assert torch.allclose(methods("gradient_x_input", x, labels), (x * inputs.grad).sum(1), atol=1e-5)


def test_gradcam_is_cam_on_a_global_average_pooled_network():
    torch.manual_seed(0)
    model = GapNet().eval()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        acts = model.relu(model.conv(x))
    weights = model.head.weight.detach()[[2, 0]]  # d logit / d A_k(a, b) = w_k / (h w): the mean gradient is w_k / hw
    cam = torch.relu((weights[:, :, None, None] * acts).sum(1) / 36)
    found = attribute(model, x, [2, 0], "gradcam", layer="relu")
    assert torch.allclose(found, cam, atol=1e-6)  # same size: the bilinear upsampling is the identity


def test_gradcam_plus_plus_by_hand_on_a_global_average_pooled_network():
    torch.manual_seed(1)
    model = GapNet().eval()
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        acts = model.relu(model.conv(x))[0].double().numpy()
    w = model.head.weight.detach()[1].double().numpy()
    expected = np.zeros((5, 5))
    for k in range(4):
        g = w[k] / 25  # constant gradient over the map
        denominator = 2 * g**2 + acts[k].sum() * g**3
        alpha = g**2 / denominator if denominator != 0 else 0.0
        expected += (alpha * max(g, 0) * 25) * acts[k]
    expected = np.maximum(expected, 0)
    found = attribute(model, x, 1, "gradcam_plus_plus", layer="relu")[0].double().numpy()
    assert np.allclose(found, expected, atol=1e-6)


def test_occlusion_of_a_linear_model_is_each_window_s_contribution():
    model = Linear()
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    contribution = (x * model.fc.weight.detach()[1].reshape(1, 3, 8, 8)).sum(1)[0]
    windows = contribution.reshape(2, 4, 2, 4).sum((1, 3))  # 4x4 windows, stride 4: no overlap
    expected = windows.repeat_interleave(4, 0).repeat_interleave(4, 1)
    found = attribute(model, x, 1, "occlusion", window=4, stride=4, progress=False)[0]
    assert torch.allclose(found, expected, atol=1e-5)  # every pixel of a window gets the whole drop


def test_random_methods_are_reproducible_by_seed_and_independent_of_the_batch(methods, batch):
    x, labels = batch
    first = methods("rise", x, labels, masks=60, seed=3)
    assert torch.equal(first, methods("rise", x, labels, masks=60, seed=3))
    assert not torch.allclose(first, methods("rise", x, labels, masks=60, seed=4))
    assert torch.allclose(first[1], methods("rise", x[1], labels[1], masks=60, seed=3), atol=1e-5)
    smooth = methods("smoothgrad", x, labels, samples=4, seed=5)
    assert torch.equal(smooth, methods("smoothgrad", x, labels, samples=4, seed=5))
    assert not torch.equal(smooth, methods("smoothgrad", x, labels, samples=4, seed=6))
    lime = methods("lime", x[:1], labels[:1], samples=20, cell=16, seed=7, progress=False)
    assert torch.equal(lime, methods("lime", x[:1], labels[:1], samples=20, cell=16, seed=7, progress=False))


def test_rise_masks_and_map_of_a_hand_made_model():
    masks = rise_masks(500, 16, 16, cells=4, keep=0.5, seed=0)
    assert masks.shape == (500, 16, 16) and 0 <= masks.min() and masks.max() <= 1
    assert abs(float(masks.mean()) - 0.5) < 0.03

    class Corner(nn.Module):  # the probability of class 0 is the mean of the top-left 4x4 corner, exactly
        def forward(self, x):
            q = x[:, :, :4, :4].mean((1, 2, 3)).clamp(1e-6, 1 - 1e-6)
            return torch.stack([q.log(), (1 - q).log()], 1)

    saliency = attribute(Corner(), torch.ones(1, 3, 16, 16), 0, "rise", masks=2000, cells=4, seed=1)[0]
    # far from the corner a mask value is independent of the probability: E[p M] / keep = E[p] = 0.5
    assert abs(float(saliency[8:, 8:].mean()) - 0.5) < 0.03
    assert saliency[:4, :4].mean() > saliency[8:, 8:].mean() + 0.1


def test_lrp_methods_are_the_engine_s_heatmaps(methods, batch, world):
    x, labels = batch
    for composite in ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"):
        reference = cs.Explainer(world.model, composite, mean=world.mean, std=world.std).heatmap(x, labels)
        assert torch.allclose(methods(f"lrp_{composite}", x, labels), reference, atol=1e-6)


def test_batched_maps_equal_one_image_at_a_time(methods, batch):
    x, labels = batch
    for name in ("gradient_x_input", "gradcam", "guided_backprop", "integrated_gradients"):
        together = methods(name, x, labels)
        alone = torch.stack([methods(name, x[i], labels[i]) for i in range(3)])
        assert torch.allclose(together, alone, atol=1e-5), name


def test_default_target_is_the_prediction(methods, batch, world):
    x, _ = batch
    predicted = world.model(x).argmax(1).tolist()
    assert torch.equal(methods("gradcam", x), methods("gradcam", x, predicted))


def test_bad_input_gets_clear_errors(methods, batch):
    x, labels = batch
    with pytest.raises(ValueError, match="unknown method 'gradcam\\+\\+'.*gradcam_plus_plus"):
        methods("gradcam++", x, labels)
    with pytest.raises(TypeError, match="takes no option.*steps"):
        methods("saliency", x, labels, steps=3)
    with pytest.raises(ValueError, match="no spatial extent.*features"):
        methods("gradcam", x, labels, layer="classifier.0")
    with pytest.raises(ValueError, match="no spatial extent"):
        methods("gradcam_plus_plus", x, labels, layer="avgpool")
    with pytest.raises(KeyError, match="no layer 'nope'"):
        methods("gradcam", x, labels, layer="nope")
    with pytest.raises(TypeError, match="float images"):
        methods("saliency", (x * 255).to(torch.uint8), labels)
    with pytest.raises(ValueError, match="not a class"):
        methods("saliency", x, 99)
    with pytest.raises(ValueError, match="has none"):
        attribute(Linear(), torch.randn(1, 3, 8, 8), 0, "gradcam")
    with pytest.raises(ValueError, match=r"take images \(B, C, H, W\)"):
        attribute(nn.Linear(5, 2), torch.randn(4, 5), 0, "saliency")


def test_vanished_relevance_is_an_error_not_a_blank_map():
    model = GapNet().eval()
    with torch.no_grad():
        model.head.weight.fill_(-1.0)  # every channel argues against class 0: Grad-CAM's ReLU leaves nothing
        model.conv.bias.fill_(1.0)
    with pytest.raises(FloatingPointError, match="gradcam.*all-zero map"):
        attribute(model, torch.randn(1, 3, 6, 6), 0, "gradcam", layer="relu")


def test_the_copy_follows_in_place_changes_of_the_user_s_weights():
    model = Linear()
    runner = Methods(model)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    before = runner("gradient_x_input", x, 0)
    with torch.no_grad():
        model.fc.weight.mul_(2)
    assert torch.allclose(runner("gradient_x_input", x, 0), 2 * before, atol=1e-5)


def test_an_explainer_stands_for_its_model(world, batch):
    x, labels = batch
    via_explainer = Methods(cs.Explainer(world.model))("gradcam", x, labels)
    assert torch.equal(via_explainer, Methods(world.model)("gradcam", x, labels))
