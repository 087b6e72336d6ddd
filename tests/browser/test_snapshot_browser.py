"""The static HTML snapshot in Debian's chromium: with hostile text in it (class names and a concept label that try to
end the embedded JSON's script element, open an HTML comment or run a script: every text must come out as written,
the views must draw, and nothing may run); precomputed for a lecture in the dark theme (clicks on a concept, a tree
node and a class answered from the page, the others saying they were not precomputed); and the heatmap's side-by-side
and contour displays, pixel by pixel. No JupyterLab needed: the snapshot is a standalone file."""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import numpy as np
import pytest
from PIL import Image

import conceptscope as cs
from conceptscope.widgets import HeatmapView, TargetView, save_html

HOSTILE = ["<!--<script>", "</script><script>window.pwned = 1</script>", "<!-- x", "</SCRIPT >",
           "<img src=x onerror=\"window.pwned = 2\">", "]]> & &amp; \u2028", "<script>", "class 7"]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    world = cs.load_world("shapes")
    data = world.dataset("test", n=4)
    explainer = cs.Explainer(world.model)
    classes = HOSTILE[:7]
    target = TargetView(explainer, data[0][0], classes=classes, k=7)
    assert target._worker.wait_idle(60)
    heatmap = HeatmapView(data.raw_image(0), np.zeros((64, 64)))
    heatmap.set_concept(np.ones((64, 64)), "<!--<script>concept</script>")
    return save_html(ipywidgets.VBox([target, heatmap]), tmp_path_factory.mktemp("snapshot") / "hostile.html",
                     title="<!--<script> title")


def test_hostile_text_in_a_snapshot_is_shown_as_written_and_never_run(browser, snapshot, artifacts: Path):
    context = browser.new_context(viewport={"width": 1000, "height": 800}, offline=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(snapshot.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.cs-target .cs-class').length === 7",
                               timeout=15_000)
        shown = [page.locator(".cs-target .cs-class > span").nth(i).text_content() for i in range(7)]
        names = sorted(text.rsplit(" ", 2)[0] for text in shown)  # "<name> 12.3 %"
        assert names == sorted(HOSTILE[:7])
        options = page.locator(".cs-target .cs-class-select option").all_text_contents()
        assert sorted(option.removesuffix(" (predicted)") for option in options) == sorted(HOSTILE[:7])
        page.wait_for_function("() => document.querySelector('.cs-heatmap .cs-canvas')?.dataset.shown === "
                               "'<!--<script>concept</script>'", timeout=15_000)
        assert page.locator(".cs-heatmap .cs-caption").text_content() == "concept <!--<script>concept</script>"
        assert page.title() == "<!--<script> title"
        assert page.evaluate("() => window.pwned") is None
        assert page.locator("img[onerror]").count() == 0 and page.locator(".cs-target img").count() == 0
        assert not errors, errors
        page.screenshot(path=artifacts / "snapshot_hostile_text.png", full_page=True)
    finally:
        context.close()


# --- a snapshot a lecturer can click through, in the dark theme -------------------------------------------------------
LAYER = "features.15"


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    from conceptscope.atlas import Atlas
    from conceptscope.render import top_mask

    world = cs.load_world("shapes")
    data = world.dataset("test", n=40)
    explainer = cs.Explainer(world.model)
    folder = tmp_path_factory.mktemp("lecture")
    atlas = Atlas.build(explainer, data, [LAYER, "features.11"], folder / "atlas", k=8, batch_size=20,
                        progress=False)
    explorer = cs.explore(explainer, data[3][0], atlas=atlas, picture=data.raw_image(3))
    assert explorer.wait(60)
    other = world.classes.index("red circle")
    path = explorer.save_html(folder / "lecture.html", theme="dark",
                              precompute=dict(classes=[other], layers=[LAYER], concepts=2, tree_depth=1))
    heatmap = explorer.heatmap.relevance
    explanation = explainer.explain(data[3][0], other)
    return {"path": path, "explorer": explorer, "other": other, "mask": top_mask(heatmap, 10),
            "picture": data.raw_image(3), "ranking": [s.channel for s in explanation.top_concepts(LAYER, 8)],
            "classes": world.classes}


def pixel(page, selector, x, y):
    return page.evaluate("([s, x, y]) => [...document.querySelector(s).getContext('2d').getImageData(x, y, 1, 1)"
                         ".data]", [selector, int(x), int(y)])


def test_a_precomputed_snapshot_answers_clicks_without_a_kernel(browser, lecture, artifacts: Path):
    explorer, other = lecture["explorer"], lecture["other"]
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, offline=True, color_scheme="light")
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(lecture["path"].as_uri())
        page.wait_for_function("() => document.querySelectorAll('.cs-concepts li').length === 8", timeout=15_000)
        # dark although the reader prefers light: the page's background and text
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(33, 33, 33)"
        page.screenshot(path=artifacts / "snapshot_dark.png", full_page=True)
        shot = np.asarray(Image.open(artifacts / "snapshot_dark.png").convert("RGB"))
        assert (shot.max(axis=2) < 60).mean() > 0.5  # mostly dark pixels
        # a concept of the list: its heatmap, tree and references come from the page's table
        first = explorer.concepts.concepts[0]["channel"]
        page.locator(f".cs-concepts li[data-channel='{first}']").click()
        page.wait_for_function(f"() => document.querySelector('.cs-heatmap .cs-canvas').dataset.shown === "
                               f"'{LAYER} #{first}'", timeout=10_000)
        page.wait_for_function("() => document.querySelectorAll('.cs-gallery figure').length === 8", timeout=10_000)
        indices = page.locator(".cs-gallery figure").evaluate_all("fs => fs.map(f => Number(f.dataset.index))")
        assert indices == explorer.gallery.atlas.top(LAYER, first, n=8)[0].tolist()
        assert page.locator(".cs-tree g[data-path]").count() > 5
        assert page.locator(".cs-heatmap .cs-error").is_hidden()
        # a tree node (precomputed one level down)
        node = page.locator(".cs-tree g[data-path]").nth(2)
        node_path = node.get_attribute("data-path")
        node.click()
        page.wait_for_function("() => document.querySelector('.cs-heatmap .cs-canvas').dataset.shown.includes('→')",
                               timeout=10_000)
        assert page.locator(".cs-tree .cs-error").is_hidden(), node_path
        # another precomputed class: the prediction view, the concept list and the shown concept follow
        page.select_option(".cs-target .cs-class-select", str(other))
        page.wait_for_function(f"() => document.querySelector('.cs-concepts li')?.dataset.channel === "
                               f"'{lecture['ranking'][0]}'", timeout=10_000)
        channels = page.locator(".cs-concepts li").evaluate_all("ls => ls.map(l => Number(l.dataset.channel))")
        assert channels == lecture["ranking"]
        assert page.locator(".cs-heatmap .cs-canvas").get_attribute("data-shown") == f"{LAYER} #{first}"
        # a class that was not precomputed says so, and the page keeps working
        unplanned = next(c for c in range(7) if c not in (other, explorer.target.target))
        page.select_option(".cs-target .cs-class-select", str(unplanned))
        page.wait_for_function("() => document.querySelector('.cs-target .cs-error')?.textContent.includes("
                               "'not precomputed in this snapshot')", timeout=10_000)
        assert page.locator(".cs-target .cs-class-select").input_value() == str(other)  # shows the class it shows
        # a concept beyond the precomputed two, too
        page.locator(".cs-concepts li").nth(5).click()
        page.wait_for_function("() => !document.querySelector('.cs-concepts .cs-error').hidden", timeout=10_000)
        assert "save_html(..., precompute=...)" in page.locator(".cs-concepts .cs-error").text_content()
        page.screenshot(path=artifacts / "snapshot_dark_clicked.png", full_page=True)
        assert not errors, errors
    finally:
        context.close()


def test_the_heatmap_displays_side_by_side_and_contour(browser, lecture, artifacts: Path):
    picture, mask = lecture["picture"], lecture["mask"]
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, offline=True)
    try:
        page = context.new_page()
        page.goto(lecture["path"].as_uri())
        canvas = ".cs-heatmap .cs-canvas"
        page.wait_for_function(f"() => document.querySelector('{canvas}').dataset.frame !== '0'", timeout=15_000)
        page.select_option(".cs-heatmap .cs-overlay", "side-by-side")
        page.wait_for_function(f"() => document.querySelector('{canvas}').width === 2 * 256 + 4", timeout=10_000)
        # the left panel is the picture; the gap is left clear; the right panel the heatmap on white
        assert pixel(page, canvas, 4 * 10 + 2, 4 * 10 + 2)[:3] == picture[10, 10].tolist()
        assert pixel(page, canvas, 257, 2)[3] == 0
        right = [pixel(page, canvas, 260 + 4 * x + 2, 4 * y + 2)[:3] for y, x in zip(*np.nonzero(mask))][:5]
        assert all(r > g and r > b for r, g, b in right)  # the most relevant pixels, red on the right
        page.select_option(".cs-heatmap .cs-overlay", "contour")
        page.wait_for_function(f"() => document.querySelector('{canvas}').dataset.overlay === 'contour'",
                               timeout=10_000)
        assert page.locator(".cs-heatmap .cs-caption").text_content().endswith(
            "outline: top 10 % of pixels by positive relevance")
        inner = ~mask | np.pad(mask, 1)[2:, 1:-1] & np.pad(mask, 1)[:-2, 1:-1] & np.pad(mask, 1)[1:-1, 2:] \
            & np.pad(mask, 1)[1:-1, :-2]
        boundary = np.argwhere(mask & ~inner)
        outside = np.argwhere(~mask)
        assert len(boundary) > 0
        for y, x in boundary[:10]:
            assert pixel(page, canvas, 4 * x + 2, 4 * y + 2)[:3] == [255, 0, 0]
        for y, x in outside[:: max(1, len(outside) // 20)]:
            assert pixel(page, canvas, 4 * x + 2, 4 * y + 2)[:3] == picture[y, x].tolist()
        page.screenshot(path=artifacts / "snapshot_contour.png")
    finally:
        context.close()


@pytest.mark.parametrize("scheme, background", [("dark", "rgb(33, 33, 33)"), ("light", "rgb(255, 255, 255)")])
def test_an_auto_theme_snapshot_follows_the_readers_preference(browser, tmp_path, scheme, background):
    view = HeatmapView(np.zeros((8, 8, 3), np.uint8), np.eye(8))
    path = save_html(view, tmp_path / "auto.html", theme="auto")
    context = browser.new_context(offline=True, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_function("() => document.querySelector('.cs-heatmap .cs-canvas').dataset.frame !== '0'",
                               timeout=15_000)
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == background
        caption = page.evaluate("() => getComputedStyle(document.querySelector('.cs-heatmap .cs-caption')).color")
        assert caption == ("rgba(255, 255, 255, 0.54)" if scheme == "dark" else "rgba(0, 0, 0, 0.54)")
    finally:
        context.close()
