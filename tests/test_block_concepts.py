"""Concepts of any module's output: a transformer block's residual stream (tokens (B, N, D): features last), maps
(B, C, H, W: channels), channel-last maps by the user's ``concept_axis``; checked by conservation, against the linear
layer with the same output, against an autograd reference on a hand-made block, and refused where there is no axis."""
import pytest
import torch
from torch import nn

import conceptscope as cs
from conceptscope.errors import UnknownLayerError

from .helpers import assert_unchanged, model_state, relative_error


class TokenBlock(nn.Module):
    """``x + fc2(relu(fc1(x)))`` on tokens, without biases: LRP-0 through it is gradient x input."""

    def __init__(self, dim):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 2 * dim, bias=False), nn.ReLU(), nn.Linear(2 * dim, dim,
                                                                                                  bias=False)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(x)))


class TokenNet(nn.Module):
    """4 px patches of an 8 px image (4 tokens of ``dim`` features), two blocks, the mean token into a linear head:
    piecewise linear and bias-free, so LRP-0 equals gradient x input everywhere."""

    def __init__(self, dim=4, classes=3):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4, bias=False)
        self.blocks = nn.Sequential(TokenBlock(dim), TokenBlock(dim))
        self.head = nn.Linear(dim, classes, bias=False)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.blocks(tokens).mean(1))


def reference_conditional_heatmap(model, image, module, feature, target):
    """Gradient x input of the target logit with the gradient at ``module``'s output masked to one feature (the last
    axis): plain autograd and a hook, nothing of conceptscope."""
    image = image.clone().requires_grad_(True)

    def mask(_module, _inputs, output):
        keep = torch.zeros_like(output)
        keep[..., feature] = 1
        output.register_hook(lambda grad: grad * keep)

    handle = module.register_forward_hook(mask)
    try:
        model(image)[0, target].backward()
    finally:
        handle.remove()
    return (image * image.grad).sum(1)[0].detach()


@pytest.fixture(scope="module")
def token_net():
    torch.manual_seed(0)
    return TokenNet().double().eval()


def test_block_outputs_are_default_concept_layers_with_features_last(token_net):
    xp = cs.Explainer(token_net, "epsilon")
    assert list(xp.layers) == ["patch", "blocks.0.fc1", "blocks.0.fc2", "blocks.0", "blocks.1.fc1", "blocks.1.fc2",
                               "blocks.1", "head"]
    assert xp.layers["blocks.1"] == 4
    image = torch.randn(3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    explanation = xp.explain(image)
    tokens = token_net.blocks(token_net.patch(image[None]).flatten(2).transpose(1, 2))
    assert torch.equal(explanation.activations["blocks.1"], tokens[0].T)  # (features, tokens): features first
    resnet = cs.load_world("shapes").resnet  # blocks with convolutions are not listed: their convolutions are
    assert not any(name.startswith("layer") and name.count(".") == 1 for name in cs.Explainer(resnet).layers)


def test_crp_on_a_block_output_matches_an_autograd_reference(token_net):
    """LRP-0 on a piecewise linear bias-free net is gradient x input; conditioning on one feature of the block output
    is masking the gradient there. Every feature's conditional heatmap matches that reference."""
    image = torch.randn(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    before = model_state(token_net)
    explanation = cs.Explainer(token_net, "epsilon").explain(image[0], target=1, layers=["blocks.0"])
    heatmaps = explanation.conditional_heatmaps("blocks.0", range(4))
    for feature in range(4):
        reference = reference_conditional_heatmap(token_net, image, token_net.blocks[0], feature, 1)
        assert relative_error(heatmaps[feature], reference) <= 1e-5  # what LRP-epsilon's 1e-9 stabilisers leave
        assert float(explanation.concept_relevance("blocks.0")[feature]) == pytest.approx(float(reference.sum()),
                                                                                          rel=1e-5, abs=1e-9)
    assert relative_error(heatmaps.sum(0), explanation.heatmap) <= 1e-9
    assert_unchanged(token_net, before)


def test_a_region_takes_the_relevance_of_the_tokens_of_its_patches(token_net):
    """Without a class token, a token's region is its patch: a 4 x 4 patch is its token, half of it half."""
    image = torch.randn(3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    explanation = cs.Explainer(token_net, "epsilon").explain(image, layers=["blocks.1"])
    relevance = explanation.relevances["blocks.1"]  # (4 features, 4 tokens of a 2 x 2 grid)
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[4:8, 0:4] = True  # the patch in row 1, column 0: token 2
    assert relative_error(explanation.concept_relevance("blocks.1", region), relevance[:, 2]) <= 1e-12
    region[4:8, 4:6] = True  # and half of token 3
    assert relative_error(explanation.concept_relevance("blocks.1", region),
                          relevance[:, 2] + relevance[:, 3] / 2) <= 1e-12


@pytest.fixture(scope="module")
def vit64():
    """The shipped shapes ViT in float64 and one test image."""
    world = cs.load_world("shapes")
    vit = world.load_model("vit").double()
    return vit, world.dataset("test", n=1, seed=4242)[0][0].double()


def test_last_block_concepts_split_the_heatmap_and_rank_its_relevance(vit64):
    vit, image = vit64
    before = model_state(vit)
    xp = cs.Explainer(vit, "attn_lrp")
    explanation = xp.explain(image)
    assert explanation.relevances["blocks.3"].shape == (48, 65)  # 48 features of 65 tokens
    total = explanation.conditional_heatmaps("blocks.3", range(48)).sum(0)
    assert relative_error(total, explanation.heatmap) <= 1e-9  # all relevance passes the last block's output
    top = explanation.top_concepts("blocks.3", k=48)
    layer_total = float(explanation.relevances["blocks.3"].sum())
    assert sum(score.relevance for score in top) == pytest.approx(layer_total, rel=1e-9)
    assert top[0].relevance >= top[1].relevance > 0
    assert_unchanged(vit, before)


@pytest.mark.parametrize(("module", "linear"), [("blocks.3.mlp", "blocks.3.mlp.fc2"),
                                                ("blocks.2.attn", "blocks.2.attn.out_proj")])
def test_a_module_whose_output_is_a_linear_layers_has_its_concepts(vit64, module, linear):
    vit, image = vit64
    explanation = cs.Explainer(vit, "attn_lrp", layers=[module, linear]).explain(image)
    assert torch.equal(explanation.relevances[module], explanation.relevances[linear])
    top = explanation.top_concepts(module, k=3)
    assert [s.channel for s in top] == [s.channel for s in explanation.top_concepts(linear, k=3)]
    channels = [s.channel for s in top]
    assert torch.equal(explanation.conditional_heatmaps(module, channels),
                       explanation.conditional_heatmaps(linear, channels))


def test_a_region_on_the_last_block_counts_the_class_tokens_relevance_where_it_lands(vit64):
    """The last block holds its relevance in the class token, which has no patch: its concepts' relevance inside a
    region is the share of their conditional heatmaps there, which over all concepts is the heatmap in the region."""
    vit, image = vit64
    explanation = cs.Explainer(vit, "attn_lrp").explain(image)
    assert not explanation.relevances["blocks.3"][:, 1:].any()
    region = torch.zeros(64, 64, dtype=torch.bool)
    region[8:40, 16:48] = True
    inside = explanation.concept_relevance("blocks.3", region)
    heatmaps = explanation.conditional_heatmaps("blocks.3", range(48))
    assert relative_error(inside, heatmaps[:, region].sum(1)) <= 1e-9
    assert float(inside.sum()) == pytest.approx(float(explanation.heatmap[region].sum()), rel=1e-9)
    outside = explanation.concept_relevance("blocks.3", ~region)
    assert relative_error(inside + outside, heatmaps.flatten(1).sum(1)) <= 1e-9


class ChannelLast(nn.Module):
    """A convolution, then a channel-last stage (B, H, W, C): a linear layer and an activation on the last axis."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.proj = nn.Linear(5, 6)
        self.act = nn.ReLU()
        self.pair = Pair()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = self.act(self.proj(self.conv(x).permute(0, 2, 3, 1)))
        return self.head(self.pair(x)[0].mean((1, 2)))


class Pair(nn.Module):
    def forward(self, x):
        return x, x.sum()


def test_channel_last_maps_take_the_users_axis_and_outputs_without_one_are_refused():
    torch.manual_seed(0)
    model = ChannelLast().double().eval()
    image = torch.randn(3, 8, 8, dtype=torch.float64)
    before = model_state(model)
    with pytest.raises(ValueError, match=r"'act' has 6 features .* has 8 along axis 1.*concept_axis=\{'act': axis\}"):
        cs.Explainer(model, "epsilon").explain(image, layers=["act"])  # (B, 8, 8, 6): axis 1 is a row
    xp = cs.Explainer(model, "epsilon", concept_axis={"act": -1})
    explanation = xp.explain(image, layers=["act", "proj"])
    assert explanation.activations["act"].shape == (6, 8, 8)
    assert relative_error(explanation.conditional_heatmaps("act", range(6)).sum(0), explanation.heatmap) <= 1e-9
    with pytest.raises(ValueError, match="'pair' returns a tuple of 2 items, not one tensor"):
        xp.explain(image, layers=["pair"])
    for axis in (0, True, "last"):
        with pytest.raises(ValueError, match="non-zero integer axis"):
            cs.Explainer(model, concept_axis={"act": axis})
    with pytest.raises(UnknownLayerError, match="no layer 'stages.1'"):
        cs.Explainer(model, concept_axis={"stages.1": -1})
    with pytest.raises(ValueError, match=r"concept_axis 4 of layer 'act' is not an axis after the batch"):
        cs.Explainer(model, "epsilon", concept_axis={"act": 4}).explain(image, layers=["act"])
    assert_unchanged(model, before)


class Flattened(nn.Module):
    """A module whose output folds the batch into its first axis: (B * H * W, C)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.fold = Fold()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.fold(self.conv(x))).unflatten(0, (x.shape[0], -1)).mean(1)


class Fold(nn.Module):
    def forward(self, x):
        return x.flatten(2).transpose(1, 2).flatten(0, 1)


def test_a_layer_without_the_batch_first_or_never_called_is_refused():
    model = Flattened().eval()
    with pytest.raises(ValueError, match=r"'fold' returns a tensor of shape \(16, 2\) for a batch of 1"):
        cs.Explainer(model, "epsilon").explain(torch.randn(3, 4, 4), layers=["fold"])
    unused = TokenNet()
    unused.spare = nn.Linear(2, 2)
    with pytest.raises(UnknownLayerError, match=r"\['spare'\] are never called"):
        _ = cs.Explainer(unused, layers=["blocks.0", "spare"]).layers


def test_default_layers_without_the_batch_first_are_left_out_and_refused_when_named():
    """timm's Swin runs its attention's linear layers on windows, (B * windows, tokens, C): listed by their module type,
    they are dropped from the default layers at the first forward pass (their first image would be one window), and
    refused when named; the blocks' outputs (B, H, W, C) have the features last."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.models.swin_transformer.SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16,
                                                         depths=(2, 2), num_heads=(2, 2), num_classes=10).eval()
    xp = cs.Explainer(model, "epsilon")
    assert "layers.0.blocks.0.attn.qkv" in xp.layers and xp.layers["layers.1.blocks.1"] == 32
    explanation = xp.explain(torch.randn(3, 32, 32))
    assert "layers.0.blocks.0.attn.qkv" not in xp.layers and "layers.0.blocks.0.attn.qkv" not in explanation.layers
    assert explanation.activations["layers.1.blocks.1"].shape == (32, 4, 4)
    total = explanation.conditional_heatmaps("layers.1.blocks.1", range(32)).sum(0)
    assert relative_error(total, explanation.heatmap) <= 1e-4
    with pytest.raises(ValueError, match=r"'layers.0.blocks.0.attn.qkv' returns a tensor of shape \(4, 16, 48\)"):
        xp.explain(torch.randn(3, 32, 32), layers=["layers.0.blocks.0.attn.qkv"])


def test_an_atlas_remembers_the_concept_axes_it_was_built_with(tmp_path):
    torch.manual_seed(0)
    model = ChannelLast().eval()
    dataset = [(torch.randn(3, 8, 8), i % 3) for i in range(6)]
    chosen = cs.Explainer(model, "epsilon", concept_axis={"act": -1})
    atlas = cs.Atlas.build(chosen, dataset, ["act"], tmp_path / "atlas", k=2, batch_size=3, progress=False)
    assert atlas.layers == {"act": 6} and atlas.manifest["identity"]["concept_axis"] == {"act": -1}
    assert cs.Atlas.load(atlas.path, chosen, dataset).layers == {"act": 6}
    with pytest.raises(cs.AtlasMismatchError, match=r"other concept axes .*\{\"act\": -1\} vs \{\}"):
        cs.Atlas.load(atlas.path, cs.Explainer(model, "epsilon"), dataset)
    plain = cs.Atlas.build(cs.Explainer(model, "epsilon"), dataset, ["proj"], tmp_path / "plain", k=2, batch_size=3,
                           progress=False)
    assert "concept_axis" not in plain.manifest["identity"]  # atlases without a chosen axis keep their identity
