"""SemanticLens on the shapes ViT's last block output (its residual stream's 48 features) against the world's ground
truth, through the VGG's code (:mod:`conceptscope.world.lens_evaluation`): features whose patch tokens' activation
separates objects with a concept from the others (AUC >= 0.9), and whether a text query puts one in its top 3.

Measured on 400 test images (``python benchmarks/semantics.py --vit-only --images 400``): the last block encodes
"yellow", "blue" and "blue striped" (the VGG's last conv layer six concepts); ActMax references find 2 of the 3
(yellow, blue striped; window or whole-image crops), RelMax references 1 (yellow): the issue's 80 % is not reached.
The ViT's last block holds its relevance in the class token, so its RelMax references show what a feature does for
the decision, not what its patch tokens respond to, which the ground truth measures.
"""
import pytest

import conceptscope as cs
from conceptscope.semantics import SemanticLens
from conceptscope.world import lens_evaluation as evaluation

LAYER = "blocks.3"


@pytest.mark.slow
def test_text_search_finds_concepts_the_vits_last_block_encodes(world, tmp_path):
    xp = cs.Explainer(world.vit, "attn_lrp")
    truth = evaluation.ground_truth(world, xp, [LAYER])[LAYER]
    singles = [concept for concept in truth if " " not in concept]
    assert singles and "yellow" in truth  # the ground truth of tokens: their patches' objects
    atlas = cs.Atlas.build(xp, world.dataset("test", n=400), [LAYER], tmp_path / "atlas", k=16, batch_size=50,
                           progress=False)
    lens = SemanticLens(atlas, world.clip, n=16, mode="activation", crop="window", progress=False)
    retrieval = evaluation.retrieval_at_k(lens, LAYER, truth)
    assert retrieval.share >= 0.5 and any(retrieval.hits[concept] for concept in singles), retrieval
