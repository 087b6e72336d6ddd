"""Static figures (cs.plot): what they draw is what was computed — overlay pixels, a colour bar centred at zero with
the heatmap's scale and logit share, bars of the concepts' shares with their labels, references, tree nodes."""
import matplotlib
import numpy as np
import pytest

import conceptscope as cs
from conceptscope.render import overlay, relevance_to_rgba

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def case(world):
    data = world.dataset("test", n=2, seed=3)
    xp = cs.Explainer(world.model)
    return xp, data[0][0], data.raw_image(0), xp.explain(data[0][0])


def test_heatmap_keeps_the_image_where_relevance_is_zero_and_labels_its_scale(case):
    _, _, picture, explanation = case
    relevance = explanation.heatmap.numpy().copy()
    relevance[:10] = 0  # a band without relevance
    logit = float(explanation.logits[explanation.target])
    figure = cs.plot.heatmap(picture, relevance, title="LRP", logit=logit)
    ax, bar = figure.axes
    shown = ax.images[0].get_array()
    np.testing.assert_array_equal(shown, overlay(picture, relevance_to_rgba(relevance, alpha=True), 1.0))
    untouched = relevance == 0
    assert untouched.any()
    np.testing.assert_array_equal(shown[untouched], picture[untouched])
    vmax = np.abs(relevance).max()
    assert bar.get_ylim() == pytest.approx((-vmax, vmax))
    assert f"max |R| {vmax:.3g}" in bar.get_ylabel()
    assert f"{relevance.sum() / logit:.0%} of the logit" in bar.get_ylabel()
    assert ax.get_title() == "LRP"


def test_relevance_alpha_grows_with_magnitude():
    rgba = relevance_to_rgba(np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]]), alpha=True)
    assert rgba[0, :, 3].tolist() == [255, 180, 0, 180, 255]  # sqrt(1/2) of full opacity
    opaque = relevance_to_rgba(np.array([[0.0, 1.0]]))
    assert opaque[0, :, 3].tolist() == [255, 255]


def test_concepts_bars_are_the_shares_named_by_labels(case):
    _, _, _, explanation = case
    scores = explanation.top_concepts("features.15", 4)
    labels = {"features.15": {scores[0].channel: "red things"}}
    figure = cs.plot.concepts(scores, labels=labels)
    ax = figure.axes[0]
    assert [p.get_width() for p in ax.patches] == pytest.approx([s.share for s in scores])
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[0] == f"red things (features.15 #{scores[0].channel})"
    assert names[1] == f"features.15 #{scores[1].channel}"
    empty = cs.plot.concepts([])
    assert empty.axes[0].texts[0].get_text() == "no concepts ranked yet"


def test_tree_draws_each_node_with_its_share(case):
    xp, image, _, _ = case
    root = xp.composition(image, "features.15", 3, depth=1, top=3)
    figure = cs.plot.tree(root, depth=1)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts[0] == "features.15 #3"
    assert texts[1:] == [f"{c.layer} #{c.channel}\n{c.share:.0%} of its parent" for c in root.children]
    assert figure.axes[0].get_title() == "composition of features.15 #3"


def test_references_show_each_image_or_say_there_are_none(world, case, tmp_path):
    xp = case[0]
    data = world.dataset("test", n=20, seed=5)
    atlas = cs.Atlas.build(xp, data, ["features.15"], tmp_path / "atlas", k=4, batch_size=10, progress=False)
    items = atlas.references("features.15", 3, n=4)
    figure = cs.plot.references(items, title="features.15 #3")
    drawn = [ax for ax in figure.axes if ax.images]
    assert len(drawn) == len(items)
    for ax, item in zip(drawn, items):
        np.testing.assert_array_equal(ax.images[0].get_array(), item.image)
        assert ax.get_title() == f"#{item.index}\n{item.score:.3g}"
    nothing = cs.plot.references([], empty="never relevant on this dataset")
    assert nothing.axes[0].texts[0].get_text() == "never relevant on this dataset"
    figure.savefig(tmp_path / "refs.pdf")
    assert (tmp_path / "refs.pdf").read_bytes()[:4] == b"%PDF"


def test_mismatched_sizes_are_refused(case):
    with pytest.raises(ValueError, match="differ in size"):
        cs.plot.heatmap(case[2], np.zeros((8, 8)))


def test_heatmap_side_by_side_and_contour_show_the_same_maps_as_the_views(case):
    from conceptscope.plot import PANEL_GAP
    from conceptscope.render import top_mask

    _, _, picture, explanation = case
    relevance = explanation.heatmap.numpy()
    ax = cs.plot.heatmap(picture, relevance, overlay="side-by-side").axes[0]
    shown = ax.images[0].get_array()
    width = picture.shape[1]
    assert shown.shape == (picture.shape[0], 2 * width + PANEL_GAP, 3)
    np.testing.assert_array_equal(shown[:, :width], picture)
    white = np.full_like(picture, 255)
    np.testing.assert_array_equal(shown[:, width + PANEL_GAP:],
                                  overlay(white, relevance_to_rgba(relevance, alpha=True), 1.0))
    figure = cs.plot.heatmap(picture, relevance, overlay="contour", contour_percent=5)
    ax, bar = figure.axes
    np.testing.assert_array_equal(ax.images[0].get_array(), picture)
    assert len(ax.collections) == 1 and ax.collections[0].get_paths()
    mask = top_mask(relevance, 5)
    assert mask.sum() == np.ceil(0.05 * mask.size)
    # the outline runs between the mask's pixels and the others: each vertex lies halfway between the centres of a
    # pixel in the mask and one outside it
    vertices = np.concatenate([path.vertices for path in ax.collections[0].get_paths()])
    for x, y in vertices:
        if x == int(x):
            pair = {mask[int(np.floor(y)), int(x)], mask[int(np.ceil(y)), int(x)]}
        else:
            pair = {mask[int(y), int(np.floor(x))], mask[int(y), int(np.ceil(x))]}
        assert pair == {True, False}, (x, y)
    assert "outline: top 5 % of pixels by R > 0" in bar.get_ylabel()
    with pytest.raises(ValueError, match="overlay must be one of"):
        cs.plot.heatmap(picture, relevance, overlay="contours")
    with pytest.raises(ValueError, match=r"contour_percent must be in \(0, 100\]"):
        cs.plot.heatmap(picture, relevance, overlay="contour", contour_percent=0)
