"""The static HTML snapshot in Debian's chromium with hostile text in it: class names and a concept label that try to
end the embedded JSON's script element, open an HTML comment or run a script. Every text must come out as written,
the views must draw, and nothing may run. No JupyterLab needed: the snapshot is a standalone file."""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import numpy as np
import pytest

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
