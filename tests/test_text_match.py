"""Why does this image match this text? TextMatch turns the shapes world's tiny CLIP into a classifier whose classes are
texts; its similarities equal CLIP's, its heatmaps put "a red circle" on the red circle, contrasts between two texts
are the difference of their heatmaps, and bad input gets clear errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import conceptscope as cs
from conceptscope.semantics import TextMatch

TEXTS = ["a red circle", "a blue circle", "a green square", "a yellow triangle"]


@pytest.fixture(scope="module")
def clip(world):
    return world.clip


@pytest.fixture(scope="module")
def match(clip):
    return TextMatch(clip, TEXTS).eval()


@pytest.fixture(scope="module")
def red_circles(world):
    data = world.dataset("test", n=400, seed=11)
    red = lambda o: o["colour"] == "red" and o["shape"] == "circle"  # noqa: E731
    indices = [i for i in range(len(data)) if any(red(o) for o in data.objects(i))][:40]
    images = torch.stack([data[i][0] for i in indices])
    masks = np.stack([np.any([o["mask"] for o in data.objects(i) if red(o)], 0) for i in indices])
    return images, masks


def test_similarities_are_clip_s_cosines(match, clip, red_circles):
    images = red_circles[0][:8]
    with torch.no_grad():
        texts = F.normalize(clip.encode_texts(TEXTS), dim=-1)
        expected = F.normalize(clip.model.encode_image(images), dim=-1) @ texts.T
        torch.testing.assert_close(match(images), expected, rtol=0, atol=1e-5)
    # and the world's preprocessing is CLIP's
    torch.testing.assert_close(match.preprocess([np.zeros((64, 64, 3), np.uint8)]), clip.preprocess(
        [np.zeros((64, 64, 3), np.uint8)]))


def test_the_relevance_of_a_red_circle_lies_on_the_red_circle(match, world, red_circles):
    """Over 40 test images that contain a red circle: the share of positive relevance on it is 8-10x its area share
    (measured: mean 10.1x, median 8.2x with EpsilonPlusFlat)."""
    images, masks = red_circles
    xp = cs.Explainer(match, classes=match.texts)
    heatmaps = xp.heatmap(images, "a red circle").clamp(min=0).numpy()
    ratios = (heatmaps * masks).sum((1, 2)) / heatmaps.sum((1, 2)) / masks.mean((1, 2))
    assert np.median(ratios) >= 3 and np.mean(ratios > 1) >= 0.9


def test_texts_are_classes_everywhere(match, red_circles):
    image = red_circles[0][0]
    xp = cs.Explainer(match, classes=match.texts)
    contrast = xp.heatmap(image, cs.Contrast("a red circle", "a blue circle"))
    torch.testing.assert_close(contrast, xp.heatmap(image, 0) - xp.heatmap(image, 1), rtol=1e-4, atol=1e-6)
    explanation = xp.explain(image, "a red circle")
    layer = next(name for name in xp.layers if name.startswith("visual.layer4"))
    top = explanation.top_concepts(layer, 3)
    maps = explanation.conditional_heatmaps(layer, [c.channel for c in top])
    assert [float(m.sum()) for m in maps] == pytest.approx([c.relevance for c in top], rel=1e-3, abs=1e-6)
    explorer = cs.explore(xp, image, classes=match.texts)
    assert explorer.wait(60)
    assert explorer.target.classes == TEXTS
    assert explorer.target.predictions[0]["name"] in TEXTS


@pytest.mark.parametrize("foundation, texts, error, message", [
    ("model", TEXTS, TypeError, "expected an open_clip foundation model"),
    (None, "a red circle", ValueError, "non-empty list of non-empty strings"),
    (None, [], ValueError, "non-empty list"),
    (None, ["a red circle", ""], ValueError, "non-empty strings"),
    (None, ["a red circle", 3], ValueError, "non-empty strings"),
    (None, ["a", "a"], ValueError, "must be distinct"),
])
def test_bad_arguments(clip, world, foundation, texts, error, message):
    with pytest.raises(error, match=message):
        TextMatch(world.model if foundation == "model" else clip, texts)


def test_a_text_target_needs_a_model_with_texts_as_classes(world):
    with pytest.raises(TypeError, match="knows no class names"):
        cs.Explainer(world.model).heatmap(world.dataset("test", n=1)[0][0], "a red circle")
