"""Snapshots a lecturer can click through (save_html(..., precompute=...)) and their theme: the page's table holds what
the explainer computes, a click in the page leads to what the live explorer shows after the same click, bad input is
refused before anything is written, and the explorer on screen is left as it was."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from conceptscope.atlas import Atlas
from conceptscope.render import contour_png, decode_png, heatmap_png
from conceptscope.widgets import CompositionTree, Precompute, _bundle, explore, save_html
from conceptscope.widgets.precompute import VIEWS, fields_json, view_state
from conceptscope.widgets.snapshot import _encode

LAYER, LOWER = "features.15", "features.11"
pytestmark = pytest.mark.slow  # one precomputed snapshot: ~10 s on 2 busy cores


def page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text)  # self-contained
    return json.loads(re.search(r'<script type="application/json" id="cs-snapshot">(.*?)</script>', text, re.S)
                      .group(1))


class Page:
    """What js/lib/static_model.js does with a page's data, in Python: the values each view shows, and clicks."""

    def __init__(self, data: dict):
        self.values, self.table = data["values"], data["precomputed"]
        self.requests = {key: i for i, key in enumerate(self.table["requests"])}
        self.shown: dict[int, dict[str, int]] = {}
        self.ids: list[int] = []

        def walk(node):
            if "box" in node:
                for child in node["children"]:
                    walk(child)
            else:
                self.ids.append(node["id"])
                self.shown[node["id"]] = {k: v["$value"] for k, v in node["state"].items()}

        walk(data["layout"])
        self.state = self.table["start"]

    def click(self, view_id: int, type_: str, **fields) -> dict:
        request = self.requests.get(f"{view_id}|{type_}|{fields_json(fields)}")
        following = None if request is None else self.table["next"][self.state].get(str(request))
        if following is None:
            return {"type": "error"}
        for view, number in enumerate(self.table["states"][following]):
            if number >= 0:
                self.shown[view].update(self.table["views"][number])
        self.state = following
        return self.table["replies"][request]

    def value(self, view_id: int, trait: str):
        return self.values[self.shown[view_id][trait]]

    def png(self, view_id: int, trait: str) -> bytes:
        return base64.b64decode(self.value(view_id, trait)["$bytes"])


@pytest.fixture(scope="module")
def atlas(xp, data, tmp_path_factory):
    return Atlas.build(xp, data, [LAYER, LOWER], tmp_path_factory.mktemp("atlas") / "a", k=8, batch_size=20,
                       progress=False)


@pytest.fixture(scope="module")
def other(world):
    return world.classes.index("red circle")


@pytest.fixture(scope="module")
def saved(xp, data, atlas, other, tmp_path_factory):
    ex = explore(xp, data[3][0], atlas=atlas, picture=data.raw_image(3), labels={LAYER: {0: "zero"}})
    assert ex.wait(60)
    before = {name: view_state(getattr(ex, name)) for name in VIEWS if getattr(ex, name) is not None}
    path = ex.save_html(tmp_path_factory.mktemp("snap") / "lecture.html", theme="dark",
                        precompute=dict(classes=[other], layers=[LAYER, LOWER], concepts=2, tree_depth=1))
    return ex, before, page_data(path)


def ids_of(ex, data) -> dict[str, int]:
    """The page's view id of each explorer view (views are numbered in layout order)."""
    order = [ex.target, ex.heatmap, ex.concepts, ex.gallery, ex.tree]
    return {name: order.index(getattr(ex, name)) for name in ("target", "heatmap", "concepts", "gallery", "tree")}


def test_the_explorer_on_screen_is_left_as_it_was(saved):
    ex, before, _ = saved
    assert ex.path == [] and ex.heatmap.show == "heatmap"
    assert {name: view_state(getattr(ex, name)) for name in before} == before


def test_precomputed_heatmaps_references_and_trees_are_what_the_explainer_computes(saved, xp, data, atlas, other):
    ex, _, page_json = saved
    page, ids = Page(page_json), ids_of(ex, page_json)
    assert page.click(ids["target"], "target", target=other) == {"type": "target_set", "target": other}
    assert page.value(ids["target"], "target") == other
    explanation = xp.explain(data[3][0], other)
    np.testing.assert_array_equal(decode_png(page.png(ids["heatmap"], "heatmap_png")),
                                  decode_png(heatmap_png(explanation.heatmap.numpy(), alpha=True)))
    listed = page.value(ids["concepts"], "concepts")
    assert [c["channel"] for c in listed] == [s.channel for s in explanation.top_concepts(LAYER, 8)]
    channel = listed[1]["channel"]
    assert page.click(ids["concepts"], "select", layer=LAYER, channel=channel) == {
        "type": "selected", "layer": LAYER, "channel": channel}
    expected = explanation.conditional_heatmaps(LAYER, [channel])[0].numpy()
    np.testing.assert_array_equal(decode_png(page.png(ids["heatmap"], "concept_png")),
                                  decode_png(heatmap_png(expected, alpha=True)))
    np.testing.assert_array_equal(decode_png(page.png(ids["heatmap"], "concept_contour_png")),
                                  decode_png(contour_png(expected, 10)))
    assert page.value(ids["heatmap"], "concept_label") == f"{LAYER} #{channel}"
    gallery = page.value(ids["gallery"], "references")
    assert [r["index"] for r in gallery] == atlas.top(LAYER, channel, n=8)[0].tolist()
    tree = page.value(ids["tree"], "tree")
    assert tree["path"] == [[LAYER, channel]] and len(tree["children"]) == 5
    assert all(child["children"] is not None for child in tree["children"])  # the next level is there too
    child = tree["children"][2]
    assert page.click(ids["tree"], "expand", path=child["path"]) == {"type": "done", "request": "tree"}
    node = xp.composition(data[3][0], LAYER, channel, other, depth=2, top=5).children[2]
    np.testing.assert_allclose(node.relevance, child["relevance"], rtol=1e-5)
    np.testing.assert_array_equal(decode_png(page.png(ids["heatmap"], "concept_png")),
                                  decode_png(heatmap_png(node.heatmap().numpy(), alpha=True)))
    grandchild = child["children"][0]["path"]
    assert page.click(ids["tree"], "expand", path=grandchild) == {"type": "error"}  # deeper than tree_depth=1
    unlisted = next(c for c in range(64) if c not in [c_["channel"] for c_ in listed[:2]])
    assert page.click(ids["concepts"], "select", layer=LAYER, channel=unlisted) == {"type": "error"}
    unplanned = next(c for c in range(7) if c not in (other, ex.target.target))
    assert page.click(ids["target"], "target", target=unplanned) == {"type": "error"}


CLICKS = [("concepts", "select", lambda ex, o: {"layer": LAYER, "channel": ex.concepts.concepts[0]["channel"]}),
          ("tree", "expand", lambda ex, o: {"path": ex.tree.tree["children"][1]["path"]}),
          ("target", "target", lambda ex, o: {"target": o}),
          ("concepts", "layer", lambda ex, o: {"layer": LOWER}),
          ("concepts", "select", lambda ex, o: {"layer": LOWER, "channel": ex.concepts.concepts[1]["channel"]}),
          ("tree", "expand", lambda ex, o: {"path": ex.tree.tree["children"][0]["path"]}),
          ("target", "target", lambda ex, o: {"target": ex.target.predicted}),
          ("concepts", "layer", lambda ex, o: {"layer": LAYER})]


def test_each_click_in_the_page_shows_what_the_live_explorer_shows_after_it(saved, xp, data, atlas, other):
    ex, _, page_json = saved
    page, ids = Page(page_json), ids_of(ex, page_json)
    live = explore(xp, data[3][0], atlas=atlas, picture=data.raw_image(3), labels={LAYER: {0: "zero"}})
    assert live.wait(60)
    for view, type_, fields in CLICKS:
        message = fields(live, other)
        widget = getattr(live, view)
        widget._on_message(widget, {"type": type_, "id": 1, **message}, [])
        assert live.wait(60)
        reply = {k: v for k, v in widget.last_result.items() if k != "id"}
        assert page.click(ids[view], type_, **message) == reply, (view, type_, message)
        for name, number in ids.items():
            state = json.loads(json.dumps(_encode(view_state(getattr(live, name)))))
            for trait in page.shown[number]:
                if trait == "tree":  # the page's trees show the precomputed levels; the live one what was clicked
                    assert page.value(number, trait)["path"] == state[trait]["path"]
                elif trait not in ("busy", "error"):
                    assert page.value(number, trait) == state[trait], (type_, message, name, trait)


def test_the_theme_labels_and_colour_bars_survive(saved):
    ex, _, page_json = saved
    page = Page(page_json)
    heatmap, concepts = ex.heatmap, ex.concepts
    assert base64.b64decode(page.value(1, "colorbar_png")["$bytes"]) == heatmap.colorbar_png
    assert page.value(1, "scales") == heatmap.scales and page.value(1, "logit") == pytest.approx(heatmap.logit)
    assert [c["label"] for c in page.value(2, "concepts")] == [c["label"] for c in concepts.concepts]
    assert any(c["label"] == "unlabelled" for c in page.value(2, "concepts"))


@pytest.mark.parametrize("theme, present, absent", [
    ("light", ["--jp-layout-color1: #ffffff;", "color-scheme: light"], ["#212121", "@media"]),
    ("dark", ["--jp-layout-color1: #212121;", "--jp-ui-font-color1: rgba(255, 255, 255, 0.87);",
              "color-scheme: dark"], ["#ffffff", "@media"]),
    ("auto", ["--jp-layout-color1: #ffffff;", "@media (prefers-color-scheme: dark) { :root { --jp-layout-color1: "
              "#212121;"], []),
])
def test_the_page_defines_the_theme_variables_the_views_read(saved, tmp_path, theme, present, absent):
    ex = saved[0]
    text = save_html(ex.heatmap, tmp_path / "h.html", theme=theme).read_text(encoding="utf-8")
    css = text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert all(part in css for part in present) and not any(part in css for part in absent)
    read = set(re.findall(r"var\((--jp-[a-z0-9-]+)", (_bundle.STATIC / "heatmap.js").read_text(encoding="utf-8")))
    assert len(read) > 5 and all(name in css for name in read)


@pytest.mark.parametrize("options, error, match", [
    (dict(precompute=dict(classes=["purple blob"])), ValueError, "unknown class 'purple blob'; classes: 'yellow"),
    (dict(precompute=dict(classes=[7])), ValueError, r"class 7 is neither a class index \(0..6\)"),
    (dict(precompute=dict(classes="red circle")), TypeError, "classes must be a non-empty list"),
    (dict(precompute=dict(layers=["features.99"])), ValueError, "unknown layer 'features.99'; layers: "),
    (dict(precompute=dict(concepts=0)), ValueError, "precompute concepts must be an integer >= 1; got 0"),
    (dict(precompute=dict(concepts=True)), TypeError, "precompute concepts must be an integer"),
    (dict(precompute=dict(concepts=9)), ValueError, "the concept list shows only 8"),
    (dict(precompute=dict(tree_depth=-1)), ValueError, "tree_depth must be an integer >= 0"),
    (dict(precompute=dict(depth=2)), TypeError, "precompute has no field 'depth'; its fields: classes, layers"),
    (dict(precompute="everything"), TypeError, "precompute must be a Precompute or a dict"),
    (dict(theme="solarized"), ValueError, "theme must be one of 'light', 'dark', 'auto'; got 'solarized'"),
])
def test_bad_precompute_or_theme_is_refused_and_nothing_is_written(saved, tmp_path, options, error, match):
    ex = saved[0]
    with pytest.raises(error, match=match):
        ex.save_html(tmp_path / "bad.html", **options)
    assert not (tmp_path / "bad.html").exists()


def test_precompute_needs_an_explorer_or_a_tree(saved, tmp_path):
    with pytest.raises(TypeError, match="precompute= needs an Explorer or a CompositionTree .* got a HeatmapView"):
        save_html(saved[0].heatmap, tmp_path / "h.html", precompute={})
    assert not (tmp_path / "h.html").exists()


def test_a_deep_concept_path_shown_now_is_where_the_page_starts(xp, data, tmp_path):
    ex = explore(xp, data[0][0], k=2, scale=1.5)  # no atlas: no gallery
    ex.target.k, ex.tree.top = 3, 2
    assert ex.wait(60)
    root = ex.concepts.concepts[1]["channel"]
    ex.concepts._on_message(ex.concepts, {"type": "select", "id": 1, "layer": LAYER, "channel": root}, [])
    assert ex.wait(60)
    ex.tree._on_message(ex.tree, {"type": "expand", "id": 2, "path": ex.tree.tree["children"][1]["path"]}, [])
    assert ex.wait(60)
    shown = ex.path
    page_json = page_data(ex.save_html(tmp_path / "deep.html", precompute=Precompute(tree_depth=0)))
    assert ex.path == shown and len(shown) == 2
    page = Page(page_json)
    table = page_json["precomputed"]
    assert sum("|select|" in key for key in table["requests"]) == 2  # concepts=None: the list's k
    start = table["states"][table["start"]]
    heatmap = table["views"][start[1]]
    assert base64.b64decode(page.values[heatmap["concept_png"]]["$bytes"]) == ex.heatmap.concept_png
    assert page.values[heatmap["concept_label"]] == ex.heatmap.concept_label
    assert not any({"scale", "k", "top"} & set(table["views"][number]) for number in start)  # settings kept
    assert len(page.value(3, "tree")["children"]) == 2
    # the tree's root is a click away and shows the root alone
    assert page.click(3, "expand", path=[[LAYER, root]]) == {"type": "done", "request": "tree"}  # ids: no gallery
    assert page.value(1, "concept_label") == f"{LAYER} #{root}"


def test_a_tree_alone_answers_clicks_on_its_nodes(xp, data, tmp_path):
    tree = CompositionTree(xp, data[3][0], LAYER, 5, top=3)
    assert tree._worker.wait_idle(60)
    with pytest.raises(ValueError, match="precomputes its nodes only: give tree_depth, not classes"):
        save_html(tree, tmp_path / "bad.html", precompute=dict(classes=[1]))
    with pytest.raises(ValueError, match="the tree shows no concept yet"):
        save_html(CompositionTree(xp, data[3][0]), tmp_path / "bad.html", precompute={})
    assert not (tmp_path / "bad.html").exists()
    before = view_state(tree)
    page = Page(page_data(save_html(tree, tmp_path / "tree.html", precompute=dict(tree_depth=2))))
    assert view_state(tree) == before
    table = page.table
    assert len(table["states"]) == 1 + 3 + 9 and len(table["requests"]) == 13
    assert page.click(0, "expand", path=[[LAYER, 5]]) == {"type": "done", "request": "tree"}
    child = page.value(0, "tree")["children"][1]  # the tree as precomputed: three levels below the root
    grandchild = child["children"][2]["path"]
    assert page.click(0, "expand", path=grandchild) == {"type": "done", "request": "tree"}
    assert page.value(0, "selected") == grandchild
    node = xp.composition(data[3][0], LAYER, 5, depth=2, top=3).children[1].children[2]
    np.testing.assert_array_equal(decode_png(page.png(0, "heatmap_png")),
                                  decode_png(heatmap_png(node.heatmap().numpy(), alpha=True)))
    deeper = page.value(0, "tree")["children"][1]["children"][2]["children"][0]["path"]
    assert page.click(0, "expand", path=deeper) == {"type": "error"}
