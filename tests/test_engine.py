"""The engine against independent references: zennit's own LRP, the naive CRP scheme, hand-derived LRP-0 values and
relevance conservation, on torchvision VGG16, VGG16-BN and ResNet-18 with random weights."""
import threading

import numpy as np
import pytest
import torch
import torchvision
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import LayerMapComposite
from zennit.rules import Epsilon, Pass
from zennit.torchvision import ResNetCanonizer

import conceptscope as cs
from conceptscope.engine.naive_crp import naive_conditional_heatmaps
from conceptscope.models import make_composite

from .helpers import assert_unchanged, model_state, relative_error


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {name: getattr(torchvision.models, name)(weights=None).eval() for name in ("vgg16", "vgg16_bn", "resnet18")}


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(1)
    return torch.randn(3, 32, 32)


def zennit_composite(model, name):
    """The named composite with zennit's own canonizers (its ResNet canonizer, sequential BatchNorm merging): the
    independent reference for conceptscope's data-flow BatchNorm merging and proportional residual sums."""
    resnet = any(isinstance(m, torchvision.models.resnet.BasicBlock) for m in model.modules())
    canonizers = [ResNetCanonizer()] if resnet else [SequentialMergeBatchNorm()]
    composite = make_composite(model, name)
    composite.canonizers = canonizers
    return composite


@pytest.mark.parametrize("name", ["vgg16_bn", "resnet18"])
@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"])
def test_heatmap_equals_zennit(nets, image, name, composite):
    model = nets[name]
    heatmap = cs.Explainer(model, composite).heatmap(image[None], target=[3])[0]
    with Gradient(model=model, composite=zennit_composite(model, composite)) as attributor:
        _, reference = attributor(image[None], lambda out: torch.eye(1000)[[3]] * out)
    assert relative_error(heatmap, reference[0].sum(0)) < 1e-4


def test_any_zennit_composite_is_used_as_is(nets, image):
    model = nets["vgg16"]
    composite = LayerMapComposite([(torch.nn.ReLU, Pass()), (torch.nn.Conv2d, Epsilon(0.25)),
                                   (torch.nn.Linear, Epsilon(0.25))])
    heatmap = cs.Explainer(model, composite).heatmap(image, target=7)
    with Gradient(model=model, composite=composite) as attributor:
        _, reference = attributor(image[None], lambda out: torch.eye(1000)[[7]] * out)
    assert relative_error(heatmap, reference[0].sum(0)) < 1e-4


# VGG: every conv layer is a cut of the graph. ResNet: block outputs are cuts; inside a block relevance also bypasses
# the layer through the shortcut, so there the sum equals the relevance that flows through the layer.
CUT_LAYERS = [("vgg16", "features.28"), ("vgg16", "features.5"), ("vgg16_bn", "features.40"),
              ("resnet18", "layer4"), ("resnet18", "layer2.1"), ("resnet18", "conv1")]


@pytest.mark.parametrize("name,layer", CUT_LAYERS)
def test_conservation_float64(nets, image, name, layer):
    model = nets[name].double()
    try:
        explanation = cs.Explainer(model).explain(image.double(), layers=[layer])
        channels = explanation.activations[layer].shape[0]
        total = explanation.conditional_heatmaps(layer, range(channels)).sum(0)
        assert relative_error(total, explanation.heatmap) <= 1e-5
    finally:
        model.float()


@pytest.mark.parametrize("name,layer", [("vgg16", "features.28"), ("resnet18", "layer3")])
def test_conservation_float32(nets, image, name, layer):
    explanation = cs.Explainer(nets[name]).explain(image, layers=[layer])
    channels = explanation.activations[layer].shape[0]
    total = explanation.conditional_heatmaps(layer, range(channels), chunk_size=64).sum(0)
    assert relative_error(total, explanation.heatmap) <= 1e-4


def test_non_cut_layer_sums_to_relevance_through_it(nets, image):
    explanation = cs.Explainer(nets["resnet18"]).explain(image)
    layer = "layer4.1.conv2"
    total = explanation.conditional_heatmaps(layer, range(512)).sum(0)
    through = explanation.conditional_heatmap({layer: list(range(512))})
    assert relative_error(total, through) <= 1e-4
    # the shortcut carries the rest: the two differ from the full heatmap
    assert relative_error(total, explanation.heatmap) > 1e-2


@pytest.mark.parametrize("name,layer", [("vgg16_bn", "features.40"), ("resnet18", "layer4.1.conv2")])
def test_batched_equals_one_at_a_time_and_naive_zennit(nets, image, name, layer):
    model = nets[name]
    explanation = cs.Explainer(model).explain(image, layers=[layer])
    kept = explanation.heatmap.clone(), explanation.relevances[layer].clone()
    channels = [0, 5, 17, 300, 511]
    batched = explanation.conditional_heatmaps(layer, channels)
    for channel, heatmap in zip(channels, batched):
        alone = explanation.conditional_heatmaps(layer, [channel])[0]
        assert torch.allclose(heatmap, alone, rtol=1e-5, atol=1e-9 * float(alone.abs().max()))
    # the backward passes work in place on relevance they made themselves, never on what the explanation keeps
    assert torch.equal(explanation.heatmap, kept[0]) and torch.equal(explanation.relevances[layer], kept[1])
    assert torch.equal(explanation.conditional_heatmaps(layer, channels), batched)
    naive = naive_conditional_heatmaps(model, zennit_composite(model, "epsilon_plus_flat"), image, layer, channels,
                                       explanation.target)
    assert relative_error(batched, naive) < 1e-4


def test_hand_derived_lrp0():
    """x -> W1 -> ReLU -> W2 -> logits, LRP-0: R_j = a_j w2_jt, and R_i|j = x_i w1_ij / z_j * R_j."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.ReLU(), torch.nn.Linear(3, 2, bias=False))
    net = net.double().eval()
    x = torch.tensor([[0.5, -1.0, 2.0, 0.25]], dtype=torch.float64)
    composite = LayerMapComposite([(torch.nn.ReLU, Pass()), (torch.nn.Linear, Epsilon(1e-12))])
    explanation = cs.Explainer(net, composite).explain(x, target=1, layers=["0"])
    w1, w2 = net[0].weight.detach().numpy(), net[2].weight.detach().numpy()
    z = w1 @ x[0].numpy()
    a = np.maximum(z, 0)
    relevance_hidden = a * w2[1]
    assert np.allclose(explanation.relevances["0"].numpy(), relevance_hidden, atol=1e-9)
    for j in range(3):
        expected = x[0].numpy() * w1[j] / z[j] * relevance_hidden[j] if z[j] != 0 else np.zeros(4)
        got = cs.Explainer(net, composite).explain(x, target=1, layers=["0"]).conditional_heatmap({"0": [j]})
        assert np.allclose(got.numpy().reshape(-1), expected, atol=1e-9)


def test_top_concepts_and_region(nets, image):
    explanation = cs.Explainer(nets["vgg16"]).explain(image)
    layer = "features.5"  # 16x16 for a 32 px input: each position covers 2x2 input pixels
    relevance = explanation.relevances[layer]
    top = explanation.top_concepts(layer, k=4)
    expected = relevance.sum((1, 2))
    assert [c.channel for c in top] == expected.topk(4).indices.tolist()
    assert top[0].share == pytest.approx(float(expected.max() / expected.abs().sum()), rel=1e-5)
    left = torch.zeros(32, 32, dtype=torch.bool)
    left[:, :16] = True
    in_region = explanation.concept_relevance(layer, region=left)
    assert torch.allclose(in_region, relevance[:, :, :8].sum((1, 2)), rtol=1e-5, atol=1e-12)
    half_cell = torch.zeros(32, 32, dtype=torch.bool)
    half_cell[:, :1] = True  # half of the first column of layer cells
    assert torch.allclose(explanation.concept_relevance(layer, region=half_cell),
                          relevance[:, :, 0].sum(1) / 2, rtol=1e-5, atol=1e-12)


def test_composition_children_and_lazy_expansion(nets, image):
    xp = cs.Explainer(nets["resnet18"])
    root = xp.composition(image, "layer3", 13, depth=1, top=4)
    assert root.expanded and len(root.children) == 4
    explanation = xp.explain(image)
    lower = explanation.lower_layers("layer3")
    assert set(lower) == {"layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv2"}
    relevances = explanation.path_relevances({"layer3": [13]}, lower)
    best = max((float(v), name, c) for name, r in relevances.items() for c, v in enumerate(r.flatten(1).sum(1)))
    assert (root.children[0].layer, root.children[0].channel) == best[1:]
    assert root.children[0].share == pytest.approx(best[0] / root.relevance, rel=1e-5)
    child = root.children[0]
    assert not child.expanded
    assert child.to_dict()["children"] is None
    grandchildren = child.children  # computed now
    assert child.expanded and all(g.path[:2] == child.path for g in grandchildren)
    assert torch.allclose(child.heatmap(), explanation.conditional_heatmap(child.conditions))
    import json
    json.dumps(root.to_dict())


def test_bad_input_errors_and_model_unchanged(nets, image):
    model = nets["resnet18"]
    model.train()
    model.layer1.requires_grad_(False)
    handle = model.register_forward_hook(lambda *a: None)
    before = model_state(model)
    xp = cs.Explainer(model)
    cases = [
        (lambda: xp.heatmap(torch.zeros(1, 4, 32, 32)), ValueError, r"shape \(B, 3, H, W\) or \(3, H, W\)"),
        (lambda: xp.heatmap(torch.zeros(32, 32, 3)), ValueError, "channels last"),
        (lambda: xp.heatmap(torch.zeros(3, 32, 32, dtype=torch.uint8)), TypeError, "float images"),
        (lambda: xp.heatmap(image, target=1000), ValueError, "1000 classes"),
        (lambda: xp.explain(image, layers=["layer9"]), KeyError, "concept layers are: conv1, layer1.0.conv1"),
        (lambda: xp.conditional_heatmaps(image, "layer4.1.conv2", [512]), ValueError, "512 channels"),
        (lambda: xp.conditional_heatmaps(image, "layer4.1.conv2", []), ValueError, "at least one channel"),
        (lambda: xp.explain(image).top_concepts("layer1.0.conv1", region=np.ones((8, 8), bool)), ValueError,
         r"input's size \(32, 32\)"),
        (lambda: xp.explain(image).top_concepts("fc", region=np.ones((32, 32), bool)), ValueError, "no spatial"),
        (lambda: xp.conditional_heatmap(image, {"layer4.1.conv2": [1], "layer4.1.downsample": [1]}), KeyError,
         "layer4.1.downsample"),
        (lambda: xp.conditional_heatmap(image, {"layer4.0.conv2": [1], "layer4.0.downsample.0": [1]}), ValueError,
         "not on the path"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    xp.conditional_heatmaps(image, "layer4.1.conv2", [1, 2])
    xp.composition(image, "layer4", 3, depth=2)
    assert_unchanged(model, before)
    handle.remove()
    model.eval().requires_grad_(True)


def test_follows_in_place_weight_changes(nets, image):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 30 * 30, 3)).eval()
    xp = cs.Explainer(model)
    before = xp.heatmap(image, target=0)
    with torch.no_grad():
        model[0].weight.mul_(-2)
    after = xp.heatmap(image, target=0)
    fresh = cs.Explainer(model).heatmap(image, target=0)
    assert torch.equal(after, fresh) and not torch.allclose(before, after)


def test_user_forward_passes_unaffected_while_explaining(nets, image):
    model = nets["vgg16_bn"]
    xp = cs.Explainer(model)
    with torch.no_grad():
        expected = model(image[None])
    errors, stop = [], threading.Event()

    def explain_repeatedly():
        try:
            while not stop.is_set():
                xp._cache.clear()
                xp.conditional_heatmaps(image, "features.40", [1, 2, 3])
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    worker = threading.Thread(target=explain_repeatedly)
    worker.start()
    try:
        for _ in range(5):
            with torch.no_grad():
                assert torch.equal(model(image[None]), expected)
            assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    finally:
        stop.set()
        worker.join()
    assert not errors
