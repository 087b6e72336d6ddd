"""The explorer's wiring on the shapes world: a selection in one view updates the others, off the message thread,
latest request wins, errors stay in the view; and its static HTML snapshot."""

import base64
import json
import re
import threading
import time

import numpy as np
import pytest

import conceptscope as cs
from conceptscope.atlas import Atlas
from conceptscope.render import encode_png
from conceptscope.widgets import Explorer, explore
from conceptscope.widgets.snapshot import layout

from .helpers import deliver, wired

LAYER = "features.15"


@pytest.fixture(scope="module")
def atlas(xp, data, tmp_path_factory):
    return Atlas.build(xp, data, [LAYER, "features.11"], tmp_path_factory.mktemp("atlas") / "a", k=8,
                       batch_size=20, progress=False)


@pytest.fixture
def ex(xp, data, atlas):
    return wired(explore(xp, data[3][0], atlas=atlas, picture=data.raw_image(3)))


def select(ex, channel, **extra):
    return deliver(ex, ex.concepts, type="select", id=channel, layer=LAYER, channel=channel, **extra)


def test_explore_builds_the_views_around_one_controller(ex, world, data):
    assert isinstance(ex, Explorer)
    assert {v.controller for v in (ex.target, ex.concepts, ex.tree)} == {ex.controller}
    assert ex.gallery.atlas is not None and ex.controller.classes == world.classes
    assert len({id(v._worker) for v in ex.views}) == 1
    np.testing.assert_array_equal(ex.controller.subject.picture, data.raw_image(3))
    assert ex.concepts.layer == LAYER and len(ex.concepts.concepts) == 8
    assert ex.target.predictions[0]["name"] == world.classes[ex.target.predicted]
    assert ex.heatmap.show == "heatmap" and ex.heatmap.concept_png == b""


def test_selecting_a_concept_updates_heatmap_tree_and_gallery(ex, xp, data, atlas):
    channel = ex.concepts.concepts[2]["channel"]
    select(ex, channel)
    image = data[3][0]
    expected = xp.explain(image).conditional_heatmaps(LAYER, [channel])[0].numpy()
    np.testing.assert_allclose(ex.heatmap.concept_relevance, expected, atol=1e-6)
    assert (ex.heatmap.show, ex.heatmap.concept_label) == ("concept", f"{LAYER} #{channel}")
    assert ex.tree.tree["path"] == [[LAYER, channel]] and ex.tree.selected == [[LAYER, channel]]
    assert ex.gallery.concept == {"layer": LAYER, "channel": channel}
    assert [r["index"] for r in ex.gallery.references] == atlas.top(LAYER, channel, n=8)[0].tolist()
    assert all(not v.busy and v.error == "" for v in ex.views)


def test_region_reranks_the_concept_list(ex, xp, data):
    deliver(ex, ex.heatmap, type="region", id=1, box=[32, 32, 64, 64])
    mask = np.zeros((64, 64), bool)
    mask[32:, 32:] = True
    expected = xp.explain(data[3][0]).top_concepts(LAYER, 8, region=mask)
    assert ex.concepts.region == [32, 32, 64, 64]
    assert [c["channel"] for c in ex.concepts.concepts] == [s.channel for s in expected]
    deliver(ex, ex.heatmap, type="region", id=2, box=[])
    assert ex.concepts.region == []


def test_expanding_a_tree_node_shows_its_path_heatmap_and_gallery(ex, xp, data):
    select(ex, ex.concepts.concepts[0]["channel"])
    child = ex.tree.tree["children"][0]["path"]
    deliver(ex, ex.tree, type="expand", id=1, path=child)
    conditions = {layer: [channel] for layer, channel in child}
    np.testing.assert_allclose(ex.heatmap.concept_relevance,
                               xp.conditional_heatmap(data[3][0], conditions).numpy(), atol=1e-6)
    assert ex.heatmap.concept_label == " → ".join(f"{layer} #{channel}" for layer, channel in child)
    assert ex.gallery.concept == {"layer": child[-1][0], "channel": child[-1][1]}
    # clicking the (still selected) root concept in the list goes back to it everywhere
    select(ex, child[0][1])
    assert ex.heatmap.concept_label == f"{LAYER} #{child[0][1]}" and ex.tree.selected == [child[0]]
    assert ex.gallery.concept == {"layer": LAYER, "channel": child[0][1]}


def test_changing_the_target_recomputes_heatmap_concepts_and_tree(ex, xp, data):
    channel = ex.concepts.concepts[0]["channel"]
    select(ex, channel)
    other = (ex.target.predicted + 1) % 7
    deliver(ex, ex.target, type="target", id=1, target=other)
    explanation = xp.explain(data[3][0], other)
    np.testing.assert_allclose(ex.heatmap.relevance, explanation.heatmap.numpy(), atol=1e-6)
    assert [c["channel"] for c in ex.concepts.concepts] == [s.channel for s in explanation.top_concepts(LAYER, 8)]
    np.testing.assert_allclose(ex.heatmap.concept_relevance,
                               explanation.conditional_heatmaps(LAYER, [channel])[0].numpy(), atol=1e-6)
    assert ex.tree.tree == xp.composition(data[3][0], LAYER, channel, target=other, depth=1).to_dict()
    assert ex.target.target == other
    assert ex.heatmap.logit == pytest.approx(float(explanation.logits[other]))  # the colour bar's share


def test_a_contrast_recomputes_heatmap_concepts_and_tree_for_the_pair(ex, xp, data):
    channel = ex.concepts.concepts[0]["channel"]
    select(ex, channel)
    a, b = ex.target.predicted, (ex.target.predicted + 3) % 7
    deliver(ex, ex.target, type="contrast", id=1, target=a, versus=b)
    contrast = cs.Contrast(a, b)
    explanation = xp.explain(data[3][0], contrast)
    np.testing.assert_allclose(ex.heatmap.relevance, explanation.heatmap.numpy(), atol=1e-6)
    assert [c["channel"] for c in ex.concepts.concepts] == [s.channel for s in explanation.top_concepts(LAYER, 8)]
    assert ex.tree.tree == xp.composition(data[3][0], LAYER, channel, target=contrast, depth=1).to_dict()
    assert (ex.target.target, ex.target.versus) == (a, b)
    assert ex.heatmap.logit == pytest.approx(float(explanation.logits[a] - explanation.logits[b]), rel=1e-6)
    ex.set_target(None)
    assert ex.wait(30) and ex.target.versus == -1
    np.testing.assert_allclose(ex.heatmap.relevance, xp.explain(data[3][0]).heatmap.numpy(), atol=1e-6)


def test_picking_a_reference_explains_it(ex, data):
    select(ex, ex.concepts.concepts[0]["channel"])
    deliver(ex, ex.heatmap, type="region", id=1, box=[0, 0, 10, 10])
    index = next(r["index"] for r in ex.gallery.references if r["index"] != 3)
    deliver(ex, ex.gallery, type="pick", id=2, index=index)
    assert ex.controller.subject.image.equal(data[index][0])
    np.testing.assert_array_equal(ex.controller.subject.picture, data.raw_image(index))
    assert ex.heatmap.region == [] and ex.concepts.region == []
    assert ex.heatmap.image_png == encode_png(data.raw_image(index))


def test_message_handlers_return_before_the_work_is_done(ex, monkeypatch):
    release = threading.Event()
    slow = ex.controller.path_heatmap
    monkeypatch.setattr(ex.controller, "path_heatmap", lambda path, top=5: release.wait(10) and slow(path, top))
    start = time.perf_counter()
    ex.concepts._on_message(ex.concepts, {"type": "select", "id": 1, "layer": LAYER, "channel": 5}, [])
    assert time.perf_counter() - start < 0.5
    assert ex.heatmap.busy and ex.concepts.sent[-1]["type"] == "selected"
    release.set()
    assert ex.wait(30) and not ex.heatmap.busy and ex.heatmap.concept_label == f"{LAYER} #5"


def test_rapid_selections_end_on_the_last_and_skip_superseded_work(ex, monkeypatch):
    computed, release = [], threading.Event()
    slow = ex.controller.path_heatmap

    def gated(path, top=5):
        release.wait(10)
        computed.append(path)
        return slow(path, top)

    monkeypatch.setattr(ex.controller, "path_heatmap", gated)
    channels = [c["channel"] for c in ex.concepts.concepts]
    for i, channel in enumerate(channels):
        ex.concepts._on_message(ex.concepts, {"type": "select", "id": i, "layer": LAYER, "channel": channel}, [])
    release.set()
    assert ex.wait(30)
    assert ex.heatmap.concept_label == f"{LAYER} #{channels[-1]}"
    assert ex.tree.tree["path"] == [[LAYER, channels[-1]]] and ex.gallery.concept["channel"] == channels[-1]
    assert len(computed) <= 3 and computed[-1] == [[LAYER, channels[-1]]]


def test_an_exception_is_shown_in_the_view_and_the_next_selection_works(ex, monkeypatch, caplog):
    def broken(path, top=5):
        raise RuntimeError("boom")

    monkeypatch.setattr(ex.controller, "path_heatmap", broken)
    select(ex, 1)
    assert ex.heatmap.error == "RuntimeError: boom" and not ex.heatmap.busy
    assert "'concept' work failed" in caplog.text
    monkeypatch.undo()
    select(ex, 2)
    assert ex.heatmap.error == "" and ex.heatmap.concept_label == f"{LAYER} #2"


def test_explorer_without_atlas_has_no_gallery(xp, data):
    explorer = explore(xp, data[0][0])
    assert explorer.gallery is None and explorer.wait(30)
    explorer.concepts._on_message(explorer.concepts, {"type": "select", "id": 1, "layer": LAYER, "channel": 4}, [])
    assert explorer.wait(30) and explorer.heatmap.concept_label == f"{LAYER} #4"
    assert explorer.target.classes == [f"class {i}" for i in range(7)]


def test_save_html_writes_a_standalone_snapshot(ex, tmp_path):
    select(ex, ex.concepts.concepts[1]["channel"])
    path = ex.save_html(tmp_path / "explorer.html")
    text = path.read_text()
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text)
    assert text.split('<script type="module">')[1].count("</script") == 1  # the bundle cannot end its script early
    data = json.loads(re.search(r'<script type="application/json" id="cs-snapshot">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))
    assert data == {"layout": json.loads(json.dumps(layout(ex)))}
    data = data["layout"]
    assert data["box"] == "column" and [c.get("view") for c in data["children"]] == ["target", None, "tree"]
    heatmap = data["children"][1]["children"][0]
    assert (heatmap["id"], heatmap["local"]) == (1, ["opacity", "overlay", "show"])
    assert heatmap["view"] == "heatmap"
    assert base64.b64decode(heatmap["state"]["concept_png"]["$bytes"]) == ex.heatmap.concept_png
    assert heatmap["state"]["concept_label"] == ex.heatmap.concept_label
    thumbnails = data["children"][1]["children"][1]["state"]["concepts"]
    assert base64.b64decode(thumbnails[0]["thumbnail"]["$bytes"]) == ex.concepts.concepts[0]["thumbnail"]


def test_the_old_raw_image_keyword_still_works_with_a_warning(xp, data):
    with pytest.warns(DeprecationWarning, match="picture="):
        explorer = explore(xp, data[3][0], raw_image=data.raw_image(3))
    np.testing.assert_array_equal(explorer.controller.subject.picture, data.raw_image(3))
    with pytest.raises(TypeError, match="picture= only"):
        explore(xp, data[3][0], picture=data.raw_image(3), raw_image=data.raw_image(3))
    with pytest.warns(DeprecationWarning, match="tree_node"):
        node = explorer.controller.node([[LAYER, 1]])
    assert (node.layer, node.channel) == (LAYER, 1)
    assert explorer.wait(30)


def test_figure_shows_what_the_explorer_shows(ex, xp, data, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    empty = ex.figure()
    assert [t.get_text() for ax in empty.axes for t in ax.texts if "no concept selected" in t.get_text()]
    channel = ex.concepts.concepts[1]["channel"]
    select(ex, channel)
    labels = {LAYER: {channel: "a named concept"}}
    figure = ex.figure(labels=labels)
    explanation = xp.explain(data[3][0])
    heatmap_ax, concept_ax, bars_ax = figure.subfigs[0].axes[:3]
    assert heatmap_ax.get_title() == f"explaining {ex.target.classes[explanation.target]!r}"
    assert concept_ax.get_title() == f"a named concept ({LAYER} #{channel})"
    shares = [s.share for s in explanation.top_concepts(LAYER, ex.concepts.k)]
    assert [p.get_width() for p in bars_ax.patches] == pytest.approx(shares)
    assert f"a named concept ({LAYER} #{channel})" in [t.get_text() for t in bars_ax.get_yticklabels()]
    references = [ax for ax in figure.subfigs[1].axes if ax.images]
    expected = ex.gallery.atlas.references(LAYER, channel, n=ex.gallery.page_size)
    assert [ax.get_title().split("\n")[0] for ax in references] == [f"#{r.index}" for r in expected]
    tree_texts = [t.get_text() for t in figure.subfigs[2].axes[0].texts]
    assert tree_texts[0] == f"a named concept ({LAYER} #{channel})" and len(tree_texts) > 1
    figure.savefig(tmp_path / "explorer.pdf")
    assert (tmp_path / "explorer.pdf").stat().st_size > 10_000
    ex.heatmap.overlay = "contour"  # the figure draws the heatmaps as the view does
    heatmap_ax, concept_ax = ex.figure().subfigs[0].axes[:2]
    np.testing.assert_array_equal(heatmap_ax.images[0].get_array(), data.raw_image(3))
    assert len(heatmap_ax.collections) == 1 and len(concept_ax.collections) == 1


def test_labels_name_concepts_in_every_view(xp, data, atlas):
    explanation = xp.explain(data[3][0])
    first, second = (s.channel for s in explanation.top_concepts(LAYER, 2))
    ex = explore(xp, data[3][0], atlas=atlas, picture=data.raw_image(3), labels={LAYER: {first: "stripes"}})
    assert ex.wait(30)
    rows = {c["channel"]: c["label"] for c in ex.concepts.concepts}
    assert rows[first] == "stripes" and rows[second] == "unlabelled"
    ex.select(LAYER, first)
    assert ex.wait(30)
    assert ex.heatmap.concept_label == f"stripes ({LAYER} #{first})"
    assert ex.gallery.concept == {"layer": LAYER, "channel": first, "label": "stripes"}
    assert ex.tree.tree["label"] == "stripes"
    assert {child["label"] for child in ex.tree.tree["children"]} == {"unlabelled"}
    plain = explore(xp, data[3][0])
    assert plain.wait(30) and {c["label"] for c in plain.concepts.concepts} == {""}


@pytest.mark.parametrize("labels, error, message", [
    ({"features.99": {1: "x"}}, ValueError, "labels name layer 'features.99', which the model does not have"),
    ({LAYER: {64: "x"}}, ValueError, "names channel 64, but the layer has channels 0..63"),
    ({LAYER: {True: "x"}}, ValueError, "names channel True"),
    ({LAYER: {-1: "x"}}, ValueError, "names channel -1"),
    ({LAYER: {1: 3}}, TypeError, "must be a string, got int"),
    ({LAYER: ["x"]}, TypeError, r"labels\['features.15'\] must be a dict"),
    (["x"], TypeError, "labels must be a dict"),
])
def test_bad_labels_are_refused(xp, data, labels, error, message):
    with pytest.raises(error, match=message):
        explore(xp, data[3][0], labels=labels)


def test_scale_enlarges_every_view_and_is_checked(xp, data):
    ex = explore(xp, data[3][0], scale=1.5)
    assert {view.scale for view in ex.views} == {1.5}
    for bad in (0, -1, 5, True):
        with pytest.raises(Exception, match="scale"):
            explore(xp, data[3][0], scale=bad)
