"""Attention heads as concepts: a layer of :class:`AttentionHeads` (an attention's per-head outputs) has the heads as
its concepts. Checked against the output projection's input, against the value projection (with CP-LRP all of a
head's relevance passes its own features of ``v_proj``), by additivity over regions, through the atlas, its window
crops and the explorer, on torchvision's written-out attention, and refused out of range."""
import numpy as np
import pytest
import torch
import torchvision

import conceptscope as cs
from conceptscope.errors import UnknownLayerError
from conceptscope.models import AttentionHeads
from conceptscope.semantics.references import reference_images, reference_table, window_box
from conceptscope.widgets import explore
from conceptscope.world.nets import ShapesViT

from .helpers import assert_unchanged, deliver, model_state, relative_error, wired

HEADS = "blocks.1.attn.heads"


@pytest.fixture(scope="module")
def vit2():
    torch.manual_seed(0)
    return ShapesViT(num_classes=7, depth=2).double().eval()


@pytest.fixture(scope="module")
def image():
    return torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_heads_are_the_concepts_of_a_heads_layer_and_leave_the_weights_alone(vit2, image):
    assert not any("heads" in key for key in vit2.state_dict())  # the shipped weights load as before
    explanation = cs.Explainer(vit2, "attn_lrp").explain(image, layers=[HEADS])
    assert tuple(explanation.activations[HEADS].shape) == (4, 65, 12)  # heads, tokens (class token first), head dim
    joined = {}
    handle = vit2.blocks[1].attn.out_proj.register_forward_hook(lambda m, args, out: joined.setdefault("x", args[0]))
    with torch.no_grad():
        vit2(image[None])
    handle.remove()  # head h is features h*12 .. h*12+11 of what the output projection joins
    torch.testing.assert_close(explanation.activations[HEADS], joined["x"][0].unflatten(1, (4, 12)).transpose(0, 1))
    relevance = explanation.relevances[HEADS]
    assert torch.allclose(explanation.concept_relevance(HEADS), relevance.sum((1, 2)), rtol=1e-12)
    assert HEADS not in cs.Explainer(vit2).layers  # a head is a concept where the user asks for it
    assert isinstance(dict(vit2.named_modules())[HEADS], AttentionHeads)


def assert_heads_pass_their_values(explanation, heads_layer, values_layer, head_dim):
    """Under CP-LRP: each head's conditional heatmap (non-zero) equals the heatmap conditioned on that head's
    ``head_dim`` features of the value projection. Returns the heads' heatmaps."""
    heads = explanation.conditional_heatmaps(heads_layer, range(4))
    assert float(heads.abs().sum()) > 0
    for head in range(4):
        features = list(range(head_dim * head, head_dim * (head + 1)))
        assert relative_error(heads[head], explanation.conditional_heatmap({values_layer: features})) <= 1e-9
    return heads


def test_a_heads_relevance_flows_through_its_own_value_features_with_cp_lrp(vit2, image):
    """CP-LRP holds the attention weights constant, so head h's relevance passes only v_proj's features
    h*d .. (h+1)*d - 1: conditioning on the head and on those features gives the same heatmap (two different masks
    at two different layers), and the heads' heatmaps sum to that of all of them."""
    xp = cs.Explainer(vit2, "cp_lrp")
    before = model_state(vit2)
    values = "blocks.1.attn.v_proj"
    explanation = xp.explain(image, layers=[HEADS, values])
    heads = assert_heads_pass_their_values(explanation, HEADS, values, 12)
    assert relative_error(heads.sum(0), explanation.conditional_heatmap({HEADS: range(4)})) <= 1e-9
    assert_unchanged(vit2, before)


def test_torchvisions_vit_has_heads_in_its_written_out_attention():
    """torchvision's ``nn.MultiheadAttention`` is written out in the explained copy (canonizer), heads marked: their
    names (``...self_attention.heads``, and the copy's ``v_proj``) are layers the user can name, though the model has
    no such module, and a head's heatmap is that of its value features under CP-LRP, as above. The model is left as
    it was; a misspelt name is still refused."""
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32,
                                               mlp_dim=64, num_classes=5).double().eval()
    torch.nn.init.normal_(vit.heads.head.weight, std=0.1)  # torchvision starts it at zero
    before = model_state(vit)
    attention = "encoder.layers.encoder_layer_1.self_attention"
    xp = cs.Explainer(vit, "cp_lrp", layers=[f"{attention}.heads", "encoder.layers.encoder_layer_1"])
    assert xp.layers[f"{attention}.heads"] == 4 and f"{attention}.heads" not in dict(vit.named_modules())
    image = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    explanation = xp.explain(image, layers=[f"{attention}.heads", f"{attention}.v_proj"])
    assert_heads_pass_their_values(explanation, f"{attention}.heads", f"{attention}.v_proj", 8)
    assert_unchanged(vit, before)
    with pytest.raises(UnknownLayerError, match="no layer 'encoder.layers.encoder_layer_1.self_attention.headz'"):
        cs.Explainer(vit, layers=[f"{attention}.headz"])


def test_a_region_on_heads_takes_the_relevance_of_its_tokens(vit2, image):
    """Regions map onto a heads layer's tokens through the patch grid (the class token through its heatmap): the four
    quadrants add up to the whole image, whose relevance per head is that of its conditional heatmap."""
    explanation = cs.Explainer(vit2, "attn_lrp").explain(image, layers=[HEADS])
    whole = explanation.concept_relevance(HEADS, torch.ones(64, 64, dtype=torch.bool))
    assert relative_error(whole, explanation.conditional_heatmaps(HEADS, range(4)).flatten(1).sum(1)) <= 1e-9
    quadrants = torch.zeros(4, 64, 64, dtype=torch.bool)
    for k, (rows, cols) in enumerate([(slice(0, 32), slice(0, 32)), (slice(0, 32), slice(32, 64)),
                                      (slice(32, 64), slice(0, 32)), (slice(32, 64), slice(32, 64))]):
        quadrants[k, rows, cols] = True
    parts = torch.stack([explanation.concept_relevance(HEADS, quadrant) for quadrant in quadrants])
    assert relative_error(parts.sum(0), whole) <= 1e-9
    top = explanation.top_concepts(HEADS, 2, region=quadrants[0])
    assert [score.channel for score in top] == parts[0].topk(2).indices.tolist()


def test_a_head_out_of_range_is_refused_with_the_valid_ids(vit2, image):
    xp = cs.Explainer(vit2, "attn_lrp")
    explanation = xp.explain(image, layers=[HEADS])
    with pytest.raises(ValueError, match=r"out of range for layer 'blocks.1.attn.heads', which has 4 .*0\.\.3"):
        explanation.conditional_heatmaps(HEADS, [4])
    with pytest.raises(ValueError, match=r"0\.\.3"):
        xp.composition(image, HEADS, 7)


LAST = "blocks.3.attn.heads"


@pytest.fixture(scope="module")
def shipped(world):
    """The shipped ViT with the last block's heads among its concept layers (named: heads are no default layer)."""
    return cs.Explainer(world.vit, "attn_lrp", layers=["blocks.2", LAST, "blocks.3"])


@pytest.fixture(scope="module")
def data(world):
    return world.dataset("test", n=24)


@pytest.fixture(scope="module")
def atlas(shipped, data, tmp_path_factory):
    return cs.Atlas.build(shipped, data, [LAST, "blocks.3"], tmp_path_factory.mktemp("heads") / "atlas", k=4,
                          batch_size=8, progress=False)


def test_an_atlas_of_heads_ranks_each_head_by_its_relevance(shipped, data, atlas):
    """Atlas.build on the shipped ViT's last heads: a head's RelMax score of a sample is the head's relevance in that
    sample's own explanation, and its references are cut on the image (relevance crops) or whole."""
    assert len(atlas.class_relevance(LAST)) == 4
    for head in range(4):
        indices, scores = atlas.top(LAST, head, "relevance", 2)
        for index, score in zip(indices, scores):
            image, label = data[int(index)]
            found = float(shipped.explain(image, label, [LAST]).concept_relevance(LAST)[head])
            assert found == pytest.approx(float(score), rel=1e-4, abs=1e-6)
    for ref in atlas.references(LAST, 0, "relevance", 2):  # cut to the head's relevance on the image
        top, left, bottom, right = ref.box
        assert ref.image.shape == (bottom - top, right - left, 3) and (bottom - top) * (right - left) < 64 * 64
        assert ref.heatmap[top:bottom, left:right].clip(min=0).sum() >= 0.5 * ref.heatmap.clip(min=0).sum()
    assert all(ref.image.shape == (64, 64, 3) for ref in atlas.references(LAST, 1, "activation", 2, crop=False))


def test_the_explorer_drills_into_heads(shipped, data, atlas):
    """The explorer on the heads layer: the concept list ranks the heads, a click shows a head's heatmap and
    references, a region reranks them, and a head's composition tree reaches into the block below."""
    image = data[3][0]
    ex = wired(explore(shipped, image, atlas=atlas, picture=data.raw_image(3), layer=LAST))
    explanation = shipped.explain(image, layers=[LAST, "blocks.3"])
    assert [c["channel"] for c in ex.concepts.concepts] == [s.channel for s in explanation.top_concepts(LAST, 4)]
    head = ex.concepts.concepts[1]["channel"]
    deliver(ex, ex.concepts, type="select", id=1, layer=LAST, channel=head)
    np.testing.assert_allclose(ex.heatmap.concept_relevance, explanation.conditional_heatmaps(LAST, [head])[0].numpy(),
                               atol=1e-6)
    assert ex.gallery.concept == {"layer": LAST, "channel": head} and ex.gallery.references
    deliver(ex, ex.heatmap, type="region", id=2, box=[0, 0, 32, 64])
    mask = np.zeros((64, 64), bool)
    mask[:32] = True
    assert [c["channel"] for c in ex.concepts.concepts] == [
        s.channel for s in explanation.top_concepts(LAST, 4, region=torch.from_numpy(mask))]
    assert ex.tree.tree["path"] == [[LAST, head]] and ex.tree.tree["children"][0]["path"][1][0] == "blocks.2"
    assert all(not v.busy and v.error == "" for v in ex.views)


def test_window_crops_of_tokens_and_heads_centre_on_the_strongest_patch(shipped, data, atlas):
    """Window crops (SemanticLens) of token layers lay the tokens on their patch grid (the class token left out); a
    head's value at a token is its largest dimension. Each window is centred on the patch where the concept is most
    active, computed here by hand from the activations."""
    table = reference_table(atlas, [LAST, "blocks.3"], 2, "activation")
    crops = list(reference_images(atlas, table, "activation", "window", window=0.25, progress=False))
    assert len(crops) == sum(int((indices >= 0).sum()) for indices in table.values()) > 0
    for picture, [(layer, channel, slot)] in crops:
        index = int(table[layer][channel, slot])
        _, found = shipped.forward(data[index][0][None], [layer])
        tokens = found[layer][0, channel, 1:]  # (64 patches, ...) without the class token
        values = tokens.amax(-1) if layer == LAST else tokens
        patch = int(values.argmax())
        row, col = 8 * (patch // 8) + 4, 8 * (patch % 8) + 4  # the centre of that 8 px patch
        box = window_box(values.reshape(8, 8), (64, 64), 0.25)
        assert box[2] - box[0] == box[3] - box[1] == 16 and box[0] <= row < box[2] and box[1] <= col < box[3]
        np.testing.assert_array_equal(picture, data.raw_image(index)[box[0]:box[2], box[1]:box[3]])
