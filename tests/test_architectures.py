"""Architectures beyond VGG/ResNet: every model is explained right (conservation with no additive constants, the
explained logits equal the model's, CRP conservation on channel-last layers) or refused with an error naming the
operation — and the user's model is untouched either way. Small configurations of the real torchvision, timm and
open_clip classes keep this fast; ``benchmarks/coverage.py`` runs the full-size models."""
import operator

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.convnext import CNBlockConfig

import conceptscope as cs
from conceptscope.models import without_constants

from .helpers import assert_unchanged, model_state

SMALL = {
    "vit": lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                        hidden_dim=32, mlp_dim=64, num_classes=10),
    "swin": lambda: torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2],
                                                       num_heads=[2, 2], window_size=[4, 4], num_classes=10),
    "convnext": lambda: torchvision.models.ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)],
                                                    num_classes=10),
    "mobilenet_v3": lambda: torchvision.models.mobilenet_v3_small(num_classes=10),
    "efficientnet": lambda: torchvision.models.efficientnet_b0(num_classes=10),
    "densenet": lambda: torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16,
                                                    num_classes=10),
    "googlenet": lambda: torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=True),
    "regnet": lambda: torchvision.models.regnet_y_400mf(num_classes=10),
}


def timm_models():
    timm = pytest.importorskip("timm")
    return {
        "timm_vit": lambda: timm.models.vision_transformer.VisionTransformer(
            img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10),
        "timm_swin": lambda: timm.models.swin_transformer.SwinTransformer(
            img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 2), num_classes=10),
    }


def open_clip_vit():
    import open_clip
    model = open_clip.CLIP(16, vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16),
                           text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1))
    return model.visual


def explained(build, size=32, dtype=torch.float64):
    model = without_constants(build(), size).to(dtype)
    image = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=dtype)
    return model, image


@pytest.mark.parametrize("name", [*SMALL, "timm_vit", "timm_swin", "open_clip_vit"])
def test_heatmap_conserves_the_logit_and_explains_the_models_own_logits(name):
    builders = {**SMALL, "open_clip_vit": open_clip_vit}
    build = builders[name] if name in builders else timm_models()[name]
    model, image = explained(build, 64 if name in ("googlenet", "efficientnet", "regnet") else 32)
    before = model_state(model)
    with torch.no_grad():
        reference = model(image)
    for composite in (None, "epsilon"):
        attribution = cs.Explainer(model, composite).attribute(image)
        assert torch.allclose(attribution.logits, reference, rtol=1e-6, atol=1e-9 * float(reference.abs().max()))
    logit = float(attribution.logits[0, attribution.targets[0]])
    # no additive constants and LRP-epsilon (1e-9) on every layer: the rules of every other operation must conserve, up
    # to the stabilisers, which absorb most where outputs are small (tokens of these tiny transformers); the default
    # composite's ZPlus loses the relevance of empty windows of depthwise convolutions, by design
    assert float(attribution.heatmaps.sum()) == pytest.approx(logit, rel=1e-3 if "vit" in name else 1e-4)
    assert_unchanged(model, before)



@pytest.mark.parametrize("name", ["vit", "convnext", "swin"])
def test_channel_last_layers_have_feature_concepts_and_crp_conserves(name):
    model, image = explained(SMALL[name])
    xp = cs.Explainer(model)
    modules = dict(model.named_modules())
    linear = [layer for layer in xp.layers if isinstance(modules[layer], torch.nn.Linear)][-2]  # inside a block
    features = modules[linear].out_features
    assert xp.layers[linear] == features
    explanation = xp.explain(image[0], layers=[linear])
    assert explanation.activations[linear].shape[0] == features  # the feature axis first, as channels of a CNN
    total = explanation.conditional_heatmaps(linear, range(features), chunk_size=7).sum(0)
    through = explanation.conditional_heatmap({linear: list(range(features))})
    assert torch.allclose(total, through, rtol=1e-6, atol=1e-9 * float(through.abs().max()))
    assert float(through.sum()) == pytest.approx(float(explanation.relevances[linear].sum()), rel=1e-4)
    top = explanation.top_concepts(linear, k=3)
    assert all(0 <= score.channel < features for score in top)
    single = explanation.conditional_heatmaps(linear, [top[0].channel])[0]
    assert float(single.sum()) == pytest.approx(top[0].relevance, rel=1e-4)


def test_token_layers_rank_regions_by_the_class_tokens_heatmaps_and_compose():
    """The last block's MLP holds relevance in the class token alone (the head reads it), which has no patch: a
    region ranks its concepts by their conditional heatmaps inside it (the patch grid's part: test_block_concepts)."""
    model, image = explained(SMALL["vit"])  # 32 px, patches of 8: a 4 x 4 grid after the class token
    xp = cs.Explainer(model)
    layer = "encoder.layers.encoder_layer_1.mlp.3"
    explanation = xp.explain(image[0], layers=[layer, "encoder.layers.encoder_layer_0.mlp.3"])
    relevance = explanation.relevances[layer]  # (features, 17 tokens)
    assert not relevance[:, 1:].any() and relevance[:, 0].any()
    region = torch.zeros(32, 32, dtype=torch.bool)
    region[8:16, 0:8] = True
    scores = explanation.concept_relevance(layer, region)
    inside = explanation.conditional_heatmaps(layer, range(relevance.shape[0]))[:, region].sum(1)
    assert torch.allclose(scores, inside, rtol=1e-9, atol=1e-15) and scores.abs().sum() > 0
    tree = xp.composition(image[0], layer, int(relevance.sum(1).argmax()), top=3)
    assert tree.children and all(child.layer in xp.layers and child.layer != layer for child in tree.children)
    assert all(0 <= child.channel < xp.layers[child.layer] for child in tree.children)


def test_layers_lists_only_called_layers():
    model, _ = explained(SMALL["vit"])
    layers = cs.Explainer(model).layers
    assert "encoder.layers.encoder_layer_0.self_attention.out_proj" in layers  # called through the explicit attention
    assert all(name in dict(model.named_modules()) for name in layers)  # names of the user's model only
    assert not any(name.endswith((".q_proj", ".k_proj", ".v_proj")) for name in layers)


class SoftmaxHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0]]))

    def forward(self, x):
        return self.fc(torch.softmax(x, -1))


def test_attnlrp_softmax_rule_hand_derived():
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    model = SoftmaxHead().double()
    relevance = cs.Explainer(model, "attn_lrp").heatmap(x, target=0)
    s = torch.softmax(x, -1)
    upper = s * model.fc.weight[0]  # epsilon rule of the linear layer: R_i = s_i w_i z / z
    expected = x * (upper - s * upper.sum())  # AttnLRP: R_in = x (R - s sum R)
    assert torch.allclose(relevance, expected, rtol=1e-5)


def test_attnlrp_and_cp_lrp_on_a_vit():
    model, image = explained(SMALL["vit"])
    cp = cs.Explainer(model, "cp_lrp").attribute(image)
    attn = cs.Explainer(model, "attn_lrp").attribute(image, target=cp.targets)
    logit = float(cp.logits[0, cp.targets[0]])
    assert float(cp.heatmaps.sum()) == pytest.approx(logit, rel=1e-4)
    share = float(attn.heatmaps.sum()) / logit  # the softmax rule absorbs part of the relevance, by design
    assert 0 < share < 1 and torch.isfinite(attn.heatmaps).all()
    timm = pytest.importorskip("timm")
    fused = timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1,
                                                             num_heads=2, num_classes=10)
    with pytest.raises(cs.UnsupportedOperationError, match="fused attention under the AttnLRP rules"):
        cs.Explainer(fused, "attn_lrp").heatmap(torch.randn(1, 3, 32, 32))


class Residual(torch.nn.Module):
    """y = fc(a(x) + b(x)) with hand-set weights: the sum must split in proportion to its terms."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 1, bias=False)
        self.b = torch.nn.Linear(2, 1, bias=False)
        self.fc = torch.nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[1.0, 0.0]]))
            self.b.weight.copy_(torch.tensor([[0.0, 3.0]]))
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def forward(self, x):
        return self.fc(self.a(x) + self.b(x))


def test_residual_sum_splits_in_proportion_hand_derived():
    x = torch.tensor([[2.0, 1.0]])  # a = 2, b = 3, logit 0 = 5
    model = Residual()
    relevance = cs.Explainer(model, "epsilon").heatmap(x, target=0)
    # epsilon rule on each linear layer: R_a = 2/5 * 5 = 2 lands on x0, R_b = 3 on x1 (no doubling as a gradient gives)
    assert torch.allclose(relevance, torch.tensor([[2.0, 3.0]]), atol=1e-4)


class Gated(torch.nn.Module):
    """Squeeze-and-excitation: the gate's branch gets no relevance, the signal all of it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.squeeze = torch.nn.Conv2d(4, 4, 1, bias=False)
        self.fc = torch.nn.Linear(4, 3, bias=False)

    def forward(self, x):
        x = F.relu(self.conv(x))
        gate = torch.sigmoid(self.squeeze(F.adaptive_avg_pool2d(x, 1)))
        return self.fc((x * gate).mean((2, 3)))


def test_gate_passes_relevance_to_the_signal_only():
    torch.manual_seed(0)
    model = Gated().double()
    image = torch.randn(3, 8, 8, dtype=torch.float64)
    explanation = cs.Explainer(model).explain(image, layers=["conv", "squeeze"])
    logit = float(explanation.logits[explanation.target])
    assert float(explanation.heatmap.sum()) == pytest.approx(logit, rel=1e-3)
    assert "squeeze" not in explanation.relevances  # the gate's branch: constant, so no relevance reaches it
    assert float(explanation.relevances["conv"].sum()) == pytest.approx(logit, rel=1e-3)


class InPlace(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.conv1(x), inplace=True)
        y = self.conv2(x)
        y += x
        return self.fc(torch.relu_(y).mean((2, 3)))


class OutOfPlace(InPlace):
    def forward(self, x):
        x = F.relu(self.conv1(x))
        return self.fc(torch.relu(self.conv2(x) + x).mean((2, 3)))


def test_in_place_operations_explained_like_their_out_of_place_forms():
    torch.manual_seed(0)
    model, twin = InPlace(), OutOfPlace()
    twin.load_state_dict(model.state_dict())
    image = torch.randn(1, 3, 8, 8)
    before = model_state(model)
    assert torch.allclose(cs.Explainer(model).heatmap(image), cs.Explainer(twin).heatmap(image), atol=1e-6)
    assert_unchanged(model, before)


class Unknown(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.erf(self.conv(x)).mean((2, 3)))


def test_operation_without_a_rule_is_refused_by_name():
    model = Unknown()
    before = model_state(model)
    with pytest.raises(cs.UnsupportedOperationError, match=r"no LRP rule for function torch.*erf"):
        cs.Explainer(model).heatmap(torch.randn(1, 3, 8, 8))
    assert_unchanged(model, before)


class DictOutput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                        torch.nn.Flatten(), torch.nn.Linear(4, 3))

    def forward(self, x):
        logits = self.body(x)
        return {"logits": logits, "double": 2 * logits}


def test_output_selector_for_dict_and_tuple_outputs():
    model = DictOutput()
    image = torch.randn(1, 3, 8, 8)
    with pytest.raises(cs.UntraceableModelError, match=r"dict with keys 'logits', 'double'.*output="):
        cs.Explainer(model).heatmap(image)
    by_key = cs.Explainer(model, output="logits").heatmap(image, target=1)
    by_function = cs.Explainer(model, output=operator.itemgetter("logits")).heatmap(image, target=1)
    assert torch.equal(by_key, by_function)
    doubled = cs.Explainer(model, output="double").heatmap(image, target=1)
    assert torch.allclose(doubled, 2 * by_key, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="does not select"):
        cs.Explainer(model, output="missing").heatmap(image)


def test_non_finite_input_and_logits_are_refused(world):
    xp = cs.Explainer(world.model)
    image = world.dataset("test", n=1)[0][0].clone()
    image[0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite"):
        xp.heatmap(image)


def test_vanished_relevance_is_refused():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(1.0)  # the logits come from biases alone: nothing of them reaches the input
    with pytest.raises(cs.RelevanceError, match="vanished"):
        cs.Explainer(model, "epsilon").heatmap(torch.randn(1, 3, 8, 8), target=0)


def test_batchnorm_merging_follows_data_flow_and_is_exact():
    torch.manual_seed(0)
    model = SMALL["densenet"]().eval()  # BatchNorm before its convolution: zennit's sequential merge pairs wrongly
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eps = 1e-3  # zennit's merged BatchNorm would compute x / sqrt(1 + eps)
            torch.nn.init.uniform_(module.running_var, 0.5, 2.0)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = model(image)
    assert torch.allclose(cs.Explainer(model).attribute(image).logits, reference, rtol=1e-5, atol=1e-6)


def test_created_relevance_warns():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 0.1]]))
        model[0].bias.copy_(torch.tensor([-9.9, 0.0]))  # logit 0 = 10 - 9.9: the input alone accounts for 100x it
    with pytest.warns(cs.RelevanceConservationWarning, match="100 times the target logit"):
        heatmap = cs.Explainer(model, "epsilon").heatmap(torch.tensor([[1.0, 1.0]]), target=0)
    assert float(heatmap.sum()) == pytest.approx(10.0, rel=1e-6)
