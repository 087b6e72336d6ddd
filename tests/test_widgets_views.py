"""The views alone on the shapes world: what each message type computes, and how malformed ones are answered."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import conceptscope as cs
from conceptscope.atlas import Atlas
from conceptscope.render import heatmap_png
from conceptscope.widgets import CompositionTree, ConceptList, Controller, HeatmapView, NeuronGallery, TargetView
from conceptscope.widgets.concepts import THUMBNAIL, thumbnail

LAYER = "features.15"


@pytest.fixture(scope="module")
def image(data):
    return data[3][0]


@pytest.fixture(scope="module")
def atlas(xp, data, tmp_path_factory):
    return Atlas.build(xp, data, [LAYER, "features.11"], tmp_path_factory.mktemp("atlas") / "a", k=12,
                       batch_size=20, progress=False)


def decode(png):
    return np.asarray(Image.open(io.BytesIO(png)))


def recording(view):
    view.sent = []
    view.send = lambda content, buffers=None: view.sent.append(content)
    return view


def deliver(view, **message):
    """Deliver a message from the front end, wait for the work it started and return the reply."""
    before = len(view.sent)
    view._on_message(view, message, [])
    assert view._worker.wait_idle(30)
    return view.sent[-1] if len(view.sent) > before else None


def ready(view):
    assert view._worker.wait_idle(30)
    return view


# --- Controller ----------------------------------------------------------------------------------

def test_controller_caches_conditional_heatmaps_per_input_target_layer_and_channel(xp, image, monkeypatch):
    controller = Controller(xp, image)
    calls = []
    original = cs.Explanation.conditional_heatmaps

    def counting(self, layer, channels, chunk_size=None):
        calls.append(list(channels))
        return original(self, layer, channels, chunk_size)

    monkeypatch.setattr(cs.Explanation, "conditional_heatmaps", counting)
    first = controller.conditional(LAYER, [3, 8, 5])
    again = controller.conditional(LAYER, [8, 1])
    assert calls == [[3, 8, 5], [1]]  # one batched call, then only the missing channel
    assert again[0] is first[1]
    expected = xp.explain(image).conditional_heatmaps(LAYER, [3])[0].numpy()
    np.testing.assert_allclose(first[0], expected, atol=1e-6)
    controller.set_target(0)
    controller.conditional(LAYER, [3])
    assert calls[-1] == [3]  # another target: computed again
    controller.clear_cache()
    controller.conditional(LAYER, [1])
    assert calls[-1] == [1]


def test_controller_asks_the_explainer_once_per_input_and_target(xp, data, image, monkeypatch):
    """The image is hashed once per input (the controller's digest): queries reuse the subject's explanation instead
    of asking the explainer, whose cache would hash the image again on every call."""
    asked = []
    original = cs.Explainer.explain

    def counting(self, image, target=None, layers=None):
        asked.append(target)
        return original(self, image, target, layers)

    monkeypatch.setattr(cs.Explainer, "explain", counting)
    controller = Controller(xp, image)
    controller.predictions()
    controller.top_concepts(LAYER, 3)
    controller.conditional(LAYER, [1, 2])
    controller.default_layer()
    assert asked == [None]
    controller.set_target(2)
    controller.top_concepts(LAYER, 3)
    controller.set_input(data[5][0])
    controller.predictions()
    assert asked == [None, 2, None]


def test_controller_rejects_bad_inputs(xp, image):
    with pytest.raises(ValueError, match=r"float tensor \(C, H, W\)"):
        Controller(xp, image[None])
    with pytest.raises(ValueError, match="float tensor"):
        Controller(xp, (image * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"picture \(32x32\) must have the model input's size \(64x64\)"):
        Controller(xp, image, picture=np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="target 9 is not a class"):
        Controller(xp, image, target=9, classes=list("abcdefg"))
    with pytest.raises(ValueError, match="class index, a Contrast of two or None"):
        Controller(xp, image).set_target("cat")


def test_controller_notifies_subscribers_of_new_input_or_target(xp, data, image):
    controller, seen = Controller(xp, image), []
    controller.subscribe(lambda: seen.append(controller.subject.key))
    first = controller.subject.digest
    controller.set_target(2)
    controller.set_input(data[5][0], data.raw_image(5))
    assert seen == [(first, 2), (controller.subject.digest, None)] and controller.subject.digest != first
    np.testing.assert_array_equal(controller.subject.picture, data.raw_image(5))


# --- HeatmapView regions and concept maps ------------------------------------------------------------

@pytest.fixture
def heatmap():
    rng = np.random.default_rng(0)
    view = HeatmapView(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8), rng.normal(size=(32, 48)).astype(np.float32))
    return recording(view)


def test_region_request_sets_region(heatmap):
    assert deliver(heatmap, type="region", id=1, box=[2, 3, 10, 20]) == {
        "type": "region_result", "box": [2, 3, 10, 20], "id": 1}
    assert heatmap.region == [2, 3, 10, 20]
    assert deliver(heatmap, type="region", id=2, box=[])["box"] == [] and heatmap.region == []


@pytest.mark.parametrize("box, error", [
    ([1, 2, 3], "region box must be [x0, y0, x1, y1] of 4 integers (or []); got [1, 2, 3]"),
    ([0, 0, 4.5, 4], "region box must be [x0, y0, x1, y1] of 4 integers"),
    ([0, 0, True, 4], "region box must be [x0, y0, x1, y1] of 4 integers"),
    ([5, 0, 5, 4], "region box [5, 0, 5, 4] is empty or outside the 48x32 image"),
    ([0, 0, 49, 4], "region box [0, 0, 49, 4] is empty or outside the 48x32 image"),
    ("0,0,4,4", "'region' message: field 'box' must be list; got str '0,0,4,4'"),
])
def test_malformed_region_requests_are_rejected(heatmap, box, error):
    heatmap.region = [1, 1, 2, 2]
    reply = deliver(heatmap, type="region", id=7, box=box)
    assert reply["type"] == "error" and reply["message"].startswith(error) and reply["id"] == 7
    assert heatmap.region == [1, 1, 2, 2]


def test_concept_map_is_shown_recoloured_and_answers_pixels(heatmap):
    concept = np.linspace(-1, 1, 32 * 48, dtype=np.float32).reshape(32, 48)
    heatmap.set_concept(concept, "features.15 #3")
    assert (heatmap.show, heatmap.concept_label) == ("concept", "features.15 #3")
    assert heatmap.concept_png == heatmap_png(concept, "bwr", alpha=True)
    assert deliver(heatmap, type="pixel", id=1, x=47, y=31)["value"] == pytest.approx(1.0)
    heatmap.colormap = "seismic"
    assert heatmap.concept_png == heatmap_png(concept, "seismic", alpha=True)
    heatmap.show = "heatmap"
    assert deliver(heatmap, type="pixel", id=2, x=47, y=31)["value"] == float(heatmap.relevance[31, 47])
    with pytest.raises(ValueError, match="shape"):
        heatmap.set_concept(concept.T, "x")


# --- ConceptList ---------------------------------------------------------------------------------

@pytest.fixture
def concepts(xp, image):
    return ready(recording(ConceptList(xp, image, k=5)))


def test_concept_list_shows_top_concepts_with_thumbnails(concepts, xp, image):
    assert concepts.layer == LAYER and concepts.layers == list(xp.layers)
    explanation = xp.explain(image)
    expected = explanation.top_concepts(LAYER, 5)
    assert [(c["channel"], c["relevance"], c["share"]) for c in concepts.concepts] == \
        [(s.channel, s.relevance, s.share) for s in expected]
    maps = explanation.conditional_heatmaps(LAYER, [s.channel for s in expected]).numpy()
    for concept, relevance in zip(concepts.concepts, maps):
        shown = decode(concept["thumbnail"])
        assert max(shown.shape[:2]) == THUMBNAIL and shown.shape[2] == 3
        assert concept["thumbnail"] == thumbnail(concepts.controller.subject.picture, relevance)
    assert "thumbnail" in concepts.get_state()["concepts"][0]  # bytes, sent as a binary buffer


def test_a_thumbnail_shows_the_concept_where_it_lies_on_the_image():
    picture = np.full((64, 64, 3), 40, np.uint8)
    relevance = np.zeros((64, 64))
    relevance[40:48, 8:16] = 1.0  # the concept lies in one small square
    shown = decode(thumbnail(picture, relevance))
    assert shown.shape == (THUMBNAIL, THUMBNAIL, 3)
    middle = shown[THUMBNAIL // 2, THUMBNAIL // 2].astype(int)
    assert middle[0] > 150 and middle[1] < 100  # red: the square, enlarged to the thumbnail's centre
    assert shown[0, 0].tolist() == [40, 40, 40]  # the image around it, untouched
    np.testing.assert_array_equal(decode(thumbnail(picture, np.zeros((64, 64)))), picture)  # nothing: whole image


def test_layer_request_lists_that_layers_concepts(concepts, xp, image):
    assert deliver(concepts, type="layer", id=1, layer="features.8") == {"type": "done", "request": "concepts", "id": 1}
    assert concepts.layer == "features.8"
    expected = [s.channel for s in xp.explain(image).top_concepts("features.8", 5)]
    assert [c["channel"] for c in concepts.concepts] == expected


@pytest.mark.parametrize("message, error", [
    ({"type": "layer", "layer": "features.99"}, "unknown layer 'features.99'; layers: features.0, features.4"),
    ({"type": "layer", "layer": 15}, "'layer' message: field 'layer' must be str; got int 15"),
    ({"type": "layer"}, "'layer' message lacks the field 'layer'"),
    ({"type": "select", "layer": LAYER, "channel": 64}, "channel 64 is out of range for layer 'features.15' (0..63)"),
    ({"type": "select", "layer": "nope", "channel": 1}, "unknown layer 'nope'"),
    ({"type": "select", "layer": LAYER, "channel": "3"}, "'select' message: field 'channel' must be int; got str '3'"),
])
def test_malformed_concept_list_requests_are_rejected(concepts, message, error):
    before = list(concepts.concepts)
    reply = deliver(concepts, id=9, **message)
    assert reply["type"] == "error" and reply["message"].startswith(error) and reply["id"] == 9
    assert concepts.concepts == before and concepts.selected == {}


def test_select_request_selects_the_concept_and_reports_every_click(concepts):
    clicks = []
    concepts.on("select", lambda layer, channel: clicks.append((layer, channel)))
    reply = deliver(concepts, type="select", id=2, layer=LAYER, channel=7)
    assert reply == {"type": "selected", "layer": LAYER, "channel": 7, "id": 2}
    assert concepts.selected == {"layer": LAYER, "channel": 7}
    deliver(concepts, type="select", id=3, layer=LAYER, channel=7)
    assert clicks == [(LAYER, 7), (LAYER, 7)]


def test_region_restricts_the_ranking(concepts, xp, image):
    concepts.set_region([0, 0, 32, 32])
    ready(concepts)
    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True
    expected = xp.explain(image).top_concepts(LAYER, 5, region=mask)
    assert concepts.region == [0, 0, 32, 32]
    assert [c["channel"] for c in concepts.concepts] == [s.channel for s in expected]
    assert [c["share"] for c in concepts.concepts] == [s.share for s in expected]


def test_region_on_a_layer_without_space_is_shown_as_error(concepts):
    concepts.set_region([0, 0, 8, 8])
    deliver(concepts, type="layer", id=3, layer="classifier.0")
    assert "has no spatial extent" in concepts.error and concepts.layer == LAYER
    concepts.set_region(None)
    assert deliver(concepts, type="layer", id=4, layer="classifier.0")["type"] == "done"
    assert concepts.error == "" and concepts.layer == "classifier.0" and len(concepts.concepts) == 5


# --- NeuronGallery -------------------------------------------------------------------------------

@pytest.fixture
def gallery(atlas):
    return ready(recording(NeuronGallery(atlas, LAYER, 3, page_size=5)))


def test_gallery_shows_references_of_the_concept(gallery, atlas):
    indices, scores = atlas.top(LAYER, 3, "relevance", n=5)
    refs = atlas.references(LAYER, 3, "relevance", n=5)
    assert gallery.concept == {"layer": LAYER, "channel": 3}
    assert [r["index"] for r in gallery.references] == indices.tolist()
    assert [r["score"] for r in gallery.references] == pytest.approx(scores.tolist())
    for shown, ref in zip(gallery.references, refs):
        np.testing.assert_array_equal(decode(shown["image"]), ref.image)
    assert (gallery.page, gallery.pages) == (0, 3)  # k=12 references, 5 per page
    assert [c["name"] for c in gallery.classes] == [c.name for c in atlas.classes_for(LAYER, 3, n=3)]


def test_gallery_shows_a_dead_concept_as_never_relevant(xp, data, tmp_path):
    atlas = Atlas.build(xp, data, ["classifier.0"], tmp_path / "dead", k=4, modes=["relevance"], batch_size=20,
                        progress=False)
    dead = int(torch.nonzero(atlas.live_counts("classifier.0") == 0)[0])  # a unit the ReLU after it always cuts off
    gallery = ready(recording(NeuronGallery(atlas, "classifier.0", dead)))
    assert gallery.references == [] and gallery.pages == 0 and gallery.classes == []
    assert f"channel {dead} of layer 'classifier.0' is never relevant on this dataset" in gallery.note
    live = int(torch.nonzero(atlas.live_counts("classifier.0") >= 4)[0])
    gallery.show("classifier.0", live)
    assert gallery._worker.wait_idle(30) and len(gallery.references) == 4 and gallery.note == ""


def test_query_request_pages_and_switches_mode_and_crop(gallery, atlas, data):
    assert deliver(gallery, type="query", id=1, mode="relevance", crop=True, page=2)["type"] == "done"
    assert [r["index"] for r in gallery.references] == atlas.top(LAYER, 3, "relevance", n=5, offset=10)[0].tolist()
    deliver(gallery, type="query", id=2, mode="activation", crop=False, page=0)
    assert (gallery.mode, gallery.crop, gallery.page) == ("activation", False, 0)
    indices = atlas.top(LAYER, 3, "activation", n=5)[0].tolist()
    assert [r["index"] for r in gallery.references] == indices
    assert decode(gallery.references[0]["image"]).shape == data.raw_image(indices[0]).shape  # whole images


@pytest.mark.parametrize("message, error", [
    ({"type": "query", "mode": "gradient", "crop": True, "page": 0}, "mode must be one of relevance, activation"),
    ({"type": "query", "mode": "relevance", "crop": True, "page": 3}, "page 3 does not exist (pages: 0..2)"),
    ({"type": "query", "mode": "relevance", "crop": True, "page": -1}, "page -1 does not exist"),
    ({"type": "query", "mode": "relevance", "crop": "yes", "page": 0}, "'query' message: field 'crop' must be bool"),
    ({"type": "pick", "index": 10_000}, "dataset index 10000 is not a reference on this page"),
    ({"type": "pick", "index": 1.0}, "'pick' message: field 'index' must be int; got float 1.0"),
])
def test_malformed_gallery_requests_are_rejected(gallery, message, error):
    before = list(gallery.references)
    reply = deliver(gallery, id=5, **message)
    assert reply["type"] == "error" and reply["message"].startswith(error)
    assert gallery.references == before and gallery.picked == -1


def test_query_before_any_concept_is_rejected(atlas):
    gallery = recording(NeuronGallery(atlas))
    assert deliver(gallery, type="query", id=1, mode="relevance", crop=True, page=0)["message"] == \
        "no concept is shown yet"


def test_pick_request_calls_back_with_the_index(gallery):
    picked = []
    gallery.on("pick", picked.append)
    index = gallery.references[2]["index"]
    assert deliver(gallery, type="pick", id=4, index=index) == {"type": "picked", "index": index, "id": 4}
    assert picked == [index] and gallery.picked == index


def test_layer_missing_from_the_atlas_gives_a_note(gallery):
    gallery.show("features.0", 1)
    ready(gallery)
    assert gallery.references == [] and "no references for layer 'features.0'" in gallery.note
    assert gallery.error == ""


# --- CompositionTree ---------------------------------------------------------------------------------

@pytest.fixture
def tree(xp, image):
    return ready(recording(CompositionTree(xp, image, LAYER, 3, top=3)))


def test_tree_shows_the_concept_and_its_sub_concepts(tree, xp, image, data):
    expected = xp.composition(image, LAYER, 3, depth=1, top=3).to_dict()
    assert tree.tree == expected and tree.selected == [[LAYER, 3]]
    relevance = xp.explain(image).conditional_heatmaps(LAYER, [3])[0].numpy()
    assert tree.heatmap_png == heatmap_png(relevance, "bwr", alpha=True)
    np.testing.assert_array_equal(decode(tree.image_png), Controller(xp, image).subject.picture)


def test_expand_request_computes_the_node_children(tree, xp, image):
    child = tree.tree["children"][1]["path"]
    assert deliver(tree, type="expand", id=1, path=child) == {"type": "done", "request": "tree", "id": 1}
    fresh = xp.composition(image, LAYER, 3, depth=2, top=3)
    assert tree.tree["children"][1] == fresh.children[1].to_dict()
    assert tree.tree["children"][0]["children"] is None  # only the clicked node was expanded
    assert tree.selected == child
    conditions = {layer: [channel] for layer, channel in child}
    assert tree.heatmap_png == heatmap_png(xp.conditional_heatmap(image, conditions).numpy(), "bwr", alpha=True)


@pytest.mark.parametrize("path, error", [
    ([], "path must be a non-empty list of [layer, channel] pairs"),
    ([[LAYER]], "path must be a non-empty list"),
    ([[LAYER, "3"]], "path must be a non-empty list"),
    ([[LAYER, 4]], "path [['features.15', 4]] does not start at the tree's root"),
    ([[LAYER, 3], ["features.11", 63]], "ValueError: ['features.11', 63] is not a sub-concept of"),
    ({"layer": LAYER}, "'expand' message: field 'path' must be list"),
])
def test_malformed_expand_requests_are_rejected(tree, path, error):
    before = tree.tree
    reply = deliver(tree, type="expand", id=3, path=path)
    assert reply["type"] == "error" and reply["message"].startswith(error)
    assert tree.tree == before and tree.selected == [[LAYER, 3]]


# --- TargetView ----------------------------------------------------------------------------------

@pytest.fixture
def target(xp, image, world):
    return ready(recording(TargetView(xp, image, k=3, classes=world.classes)))


def test_target_view_shows_the_prediction(target, world, image):
    probabilities = torch.softmax(world.model(image[None])[0], 0)
    top = probabilities.topk(3)
    assert [p["index"] for p in target.predictions] == top.indices.tolist()
    assert [p["probability"] for p in target.predictions] == pytest.approx(top.values.tolist(), abs=1e-5)
    assert [p["name"] for p in target.predictions] == [world.classes[i] for i in top.indices.tolist()]
    assert target.target == target.predicted == top.indices[0] and target.classes == world.classes


def test_target_request_explains_another_class(target):
    other = (target.predicted + 1) % len(target.classes)
    assert deliver(target, type="target", id=1, target=other) == {"type": "target_set", "target": other, "id": 1}
    ready(target)
    assert target.controller.subject.target == other and target.target == other
    deliver(target, type="target", id=2, target=target.predicted)
    ready(target)
    assert target.controller.subject.target is None and target.target == target.predicted


@pytest.mark.parametrize("value, error", [
    (7, "target 7 is not a class (0..6)"),
    (-1, "target -1 is not a class"),
    ("red", "'target' message: field 'target' must be int; got str 'red'"),
])
def test_malformed_target_requests_are_rejected(target, value, error):
    reply = deliver(target, type="target", id=4, target=value)
    assert reply["type"] == "error" and reply["message"].startswith(error)
    assert target.controller.subject.target is None


def test_contrast_request_explains_the_target_rather_than_another_class(target, xp, image):
    a, b = (target.predicted + 1) % 7, target.predicted
    reply = deliver(target, type="contrast", id=5, target=a, versus=b)
    assert reply == {"type": "target_set", "target": a, "versus": b, "id": 5}
    ready(target)
    assert target.controller.subject.target == cs.Contrast(a, b)
    assert (target.target, target.versus) == (a, b)
    torch.testing.assert_close(target.controller.explanation().heatmap, xp.heatmap(image, a) - xp.heatmap(image, b),
                               rtol=0, atol=1e-5)
    deliver(target, type="contrast", id=6, target=a, versus=-1)
    ready(target)
    assert target.controller.subject.target == a and target.versus == -1


@pytest.mark.parametrize("fields, error", [
    ({"target": 1, "versus": 1}, "a contrast needs two different classes, got 1 rather than 1"),
    ({"target": 1, "versus": 7}, "versus 7 is not a class (0..6)"),
    ({"target": 9, "versus": 1}, "target 9 is not a class (0..6)"),
    ({"target": 1}, "'contrast' message lacks the field 'versus'"),
    ({"target": 1, "versus": True}, "'contrast' message: field 'versus' must be int; got bool True"),
])
def test_malformed_contrast_requests_are_rejected(target, fields, error):
    reply = deliver(target, type="contrast", id=7, **fields)
    assert reply["type"] == "error" and reply["message"].startswith(error)
    assert target.controller.subject.target is None and target.versus == -1


def test_bundles_of_all_views_are_self_contained():
    from conceptscope.widgets import _bundle

    for view in ("heatmap", "concepts", "gallery", "tree", "target", "snapshot"):
        text = (_bundle.STATIC / f"{view}.js").read_text()
        assert "import " not in text and "import(" not in text and "https://" not in text, view



def test_views_draw_figures_of_what_they_show(xp, image, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    tree = ready(recording(CompositionTree(xp, image)))
    assert tree.figure().axes[0].texts[0].get_text() == "no concept selected: click a concept first"
    tree.set_root(LAYER, 3)
    ready(tree)
    texts = [t.get_text() for t in tree.figure(depth=1).axes[0].texts]
    root = xp.composition(image, LAYER, 3, depth=1, top=tree.top)
    assert texts == [f"{LAYER} #3"] + [f"{c.layer} #{c.channel}\n{c.share:.0%} of its parent" for c in root.children]
    view = HeatmapView(np.zeros((8, 8, 3), np.uint8), np.eye(8))
    figure = view.figure(logit=4.0)
    assert figure.axes[0].get_title() == "relevance of the target"
    assert "ΣR 8 = 200% of the logit 4" in figure.axes[1].get_ylabel()
