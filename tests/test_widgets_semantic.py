"""The SemanticSearch view on the shapes world, driven by its messages: a query shows exactly what the lens finds
(labels, scores and reference thumbnails included, each computed once), a click selects the concept in the explorer,
the audit shows the lens's audit, and bad messages give errors while the view keeps working."""

from unittest import mock

import numpy as np
import pytest

import conceptscope as cs
from conceptscope.render import encode_png
from conceptscope.semantics import SemanticLens
from conceptscope.widgets import SemanticSearch, explore

LAYERS = ["features.11", "features.15"]
VOCABULARY = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "striped", "dotted"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lens(world, xp, data, tmp_path_factory):
    atlas = cs.Atlas.build(xp, data, LAYERS, tmp_path_factory.mktemp("atlas") / "a", k=8, batch_size=20,
                           progress=False)
    # whole images: embedding needs no CRP per reference (~10x faster to build), and the view does not depend on it
    return SemanticLens(atlas, world.clip, n=8, crop="none", progress=False)


def capture(view):
    view.sent = []
    view.send = lambda content, buffers=None: view.sent.append(content)


def open_explorer(xp, data, lens):
    explorer = explore(xp, data[3][0], lens=lens, vocabulary=VOCABULARY, picture=data.raw_image(3))
    for view in explorer.views:
        capture(view)
    assert explorer.wait(30)
    return explorer


@pytest.fixture
def ex(xp, data, lens):
    return open_explorer(xp, data, lens)


def deliver(ex, view, **message):
    view._on_message(view, message, [])
    assert ex.wait(30)
    return view.sent[-1]


def search(ex, query, layer="", id=1):
    return deliver(ex, ex.search, type="search", id=id, query=query, layer=layer)


def test_explore_with_a_lens_shows_the_search_wired_to_the_explorer(ex, lens, world):
    search_view = ex.search
    assert isinstance(search_view, SemanticSearch) and search_view in ex.views and ex.children[-1] is search_view
    assert search_view.lens is lens and ex.gallery.atlas is lens.atlas  # the lens's atlas when none is given
    assert len({id(v._worker) for v in ex.views}) == 1
    assert search_view.layers == LAYERS and search_view.classes == world.classes
    assert search_view.vocabulary == VOCABULARY and search_view.hits == [] and search_view.audit == {}
    assert explore(ex.controller.explainer, ex.controller.subject.image).search is None


def test_a_query_shows_what_the_lens_finds_with_labels_scores_and_references(ex, lens):
    assert search(ex, "red") == {"type": "done", "request": "search", "id": 1}
    view = ex.search
    hits = lens.search("red", k=10)
    assert [(h["layer"], h["channel"], h["score"]) for h in view.hits] == [(h.layer, h.channel, h.score) for h in hits]
    assert (view.query, view.layer, view.busy, view.error) == ("red", "", False, "")
    labels = {(c.layer, c.channel): c for c in lens.label(VOCABULARY)}
    scores = {layer: lens.scores(layer).to_dict() for layer in LAYERS}  # undefined scores (NaN) are None
    for row in view.hits:
        label, layer_scores = labels[row["layer"], row["channel"]], scores[row["layer"]]
        assert (row["label"], row["label_score"]) == (label.label, label.score)
        for name in ("clarity", "polysemanticity", "redundancy"):
            assert row[name] == layer_scores[name][row["channel"]]
        references = lens.atlas.references(row["layer"], row["channel"], lens.mode, n=4, crop=True)
        assert view.thumbnails[f"{row['layer']}:{row['channel']}"] == [
            {"index": r.index, "image": encode_png(r.image)} for r in references]
    assert set(view.thumbnails) == {f"{h.layer}:{h.channel}" for h in hits}


def test_the_layer_filter_and_templates_are_those_of_lens_search(lens):
    templates = ["a {} shape", "something {}"]
    view = SemanticSearch(lens, templates=templates, k=3)
    capture(view)
    view._on_message(view, {"type": "search", "id": "q", "query": " blue ", "layer": "features.11"}, [])
    assert view._worker.wait_idle(30)
    hits = lens.search("blue", layer="features.11", k=3, templates=templates)
    assert [(h["layer"], h["channel"], h["score"]) for h in view.hits] == [(h.layer, h.channel, h.score) for h in hits]
    assert view.query == "blue" and view.layer == "features.11"
    assert all(h["label"] == "" and h["label_score"] is None for h in view.hits)  # no vocabulary, no labels


def test_labels_scores_and_references_are_computed_once(xp, data, lens):
    """Once per explorer: its concept names and its search's hit labels come from the same call."""
    with mock.patch.object(lens, "label", wraps=lens.label) as label, \
            mock.patch.object(lens, "scores", wraps=lens.scores) as scores, \
            mock.patch.object(lens.atlas, "references", wraps=lens.atlas.references) as references:
        ex = open_explorer(xp, data, lens)
        search(ex, "red", id=1)
        red = {(h["layer"], h["channel"]) for h in ex.search.hits}
        search(ex, "red", id=2)
        search(ex, "green", id=3)
        green = {(h["layer"], h["channel"]) for h in ex.search.hits}
    assert label.call_count == 1
    assert sorted(c.args[0] for c in scores.call_args_list) == sorted({layer for layer, _ in red | green})
    assert sorted(c.args[:2] for c in references.call_args_list) == sorted(red | green)


def test_clicking_a_hit_selects_the_concept_in_the_explorer(ex, xp, data):
    search(ex, "circle", layer="features.15")
    layer, channel = ex.search.hits[1]["layer"], ex.search.hits[1]["channel"]
    reply = deliver(ex, ex.search, type="select", id=2, layer=layer, channel=channel)
    assert reply == {"type": "selected", "layer": layer, "channel": channel, "id": 2}
    assert ex.search.selected == {"layer": layer, "channel": channel}
    expected = xp.explain(data[3][0]).conditional_heatmaps(layer, [channel])[0].numpy()
    np.testing.assert_allclose(ex.heatmap.concept_relevance, expected, atol=1e-6)
    label = ex.controller.label(layer, channel)  # the lens' label for the explorer's vocabulary, or "unlabelled"
    assert label == (ex.search.hits[1]["label"] or "unlabelled")
    assert (ex.heatmap.show, ex.heatmap.concept_label) == ("concept", f"{label} ({layer} #{channel})")
    assert ex.tree.tree["path"] == [[layer, channel]] and ex.tree.selected == [[layer, channel]]
    assert ex.gallery.concept == {"layer": layer, "channel": channel, "label": label}
    assert all(not v.busy and v.error == "" for v in ex.views)


def test_the_audit_shows_the_lens_audit(ex, lens, world):
    cls = world.classes[2]
    reply = deliver(ex, ex.search, type="audit", id=1, cls=cls, valid=["red", " circle"], spurious=["striped"],
                    layer="")
    assert reply == {"type": "done", "request": "audit", "id": 1}
    assert ex.search.audit == lens.audit(2, ["red", "circle"], ["striped"]).to_dict()
    deliver(ex, ex.search, type="audit", id=2, cls=cls, valid=[], spurious=["dotted", ""], layer="features.15")
    assert ex.search.audit == lens.audit(cls, [], ["dotted"], layer="features.15").to_dict()
    assert [layer["layer"] for layer in ex.search.audit["layers"]] == ["features.15"]


def test_a_new_vocabulary_relabels_the_hits(ex, lens):
    search(ex, "square")
    deliver(ex, ex.search, type="vocabulary", id=2, vocabulary=["square", "circle", " "])
    labels = {(c.layer, c.channel): c.label for c in lens.label(["square", "circle"])}
    assert ex.search.vocabulary == ["square", "circle"]
    assert [h["label"] for h in ex.search.hits] == [labels[h["layer"], h["channel"]] for h in ex.search.hits]


BAD = [
    ({"type": "search", "query": "  ", "layer": ""}, "the query is empty"),
    ({"type": "search", "query": "red", "layer": "features.99"}, "unknown layer 'features.99'"),
    ({"type": "search", "query": 3, "layer": ""}, "field 'query' must be str"),
    ({"type": "search", "query": "red"}, "lacks the field 'layer'"),
    ({"type": "select", "layer": "features.15", "channel": 999}, "channel 999 is out of range"),
    ({"type": "select", "layer": "", "channel": 1}, "no layer given"),
    ({"type": "select", "layer": "features.15", "channel": True}, "field 'channel' must be int"),
    ({"type": "audit", "cls": "unicorn", "valid": ["red"], "spurious": [], "layer": ""}, "unknown class 'unicorn'"),
    ({"type": "audit", "cls": "cross", "valid": [" "], "spurious": [], "layer": ""}, "at least one valid or spurious"),
    ({"type": "audit", "cls": "cross", "valid": [1], "spurious": [], "layer": ""}, "valid must be a list of strings"),
    ({"type": "vocabulary", "vocabulary": ["red", "red"]}, "duplicate entries"),
    ({"type": "lookup", "query": "red"}, "unknown message type 'lookup'"),
]


def test_bad_messages_are_answered_with_errors_and_the_view_keeps_working(ex, caplog):
    search(ex, "red", id=1)
    hits = ex.search.hits
    for i, (message, error) in enumerate(BAD):
        reply = deliver(ex, ex.search, id=i, **message)
        assert reply["type"] == "error" and reply["id"] == i and error in reply["message"], (message, reply)
        assert error in caplog.text, message  # logged on the Python side
        assert ex.search.hits == hits and not ex.search.busy
    assert ex.search.error == "the vocabulary has duplicate entries: ['red', 'red']"  # failed work shows in the view
    search(ex, "green", id="next")
    assert ex.search.error == "" and len(ex.search.hits) == 10 and ex.search.hits != hits


def test_python_api_and_select_callbacks_without_an_explorer(lens):
    view = SemanticSearch(lens, vocabulary=["red", "blue"], k=2)
    chosen = []
    view.on("select", lambda layer, channel: chosen.append((layer, channel)))
    view.search("blue")
    view.run_audit("cross", valid=["cross"])
    assert view._worker.wait_idle(30)
    assert [(h["layer"], h["channel"]) for h in view.hits] == [(h.layer, h.channel) for h in lens.search("blue", k=2)]
    assert view.audit == lens.audit("cross", ["cross"]).to_dict()
    view.select("features.11", 4)
    assert view.selected == {"layer": "features.11", "channel": 4} and chosen == [("features.11", 4)]
    with pytest.raises(ValueError, match="unknown layer"):
        view.select("nope", 0)


def test_a_search_built_for_an_explorer_the_old_way_still_shares_its_worker_and_selects(ex, lens):
    with pytest.warns(DeprecationWarning, match="explorer="):
        view = SemanticSearch(lens, explorer=ex)
    assert view._worker is ex.worker
    view.select(LAYERS[0], 2)
    assert ex.wait(30)
    assert ex.tree.tree["layer"] == LAYERS[0] and ex.tree.tree["channel"] == 2
