"""CompareView in a real JupyterLab + chromium: tiles show what Python computed, a click enlarges a method with its
scores, and choosing another class recomputes every method.

Run with ``pytest -m browser tests/browser/test_compare_browser.py``. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _jupyter import notebook_page

pytestmark = pytest.mark.browser

SETUP = """
import conceptscope as cs
world = cs.load_world("shapes")
data = world.dataset("test", n=2, seed=21)
x, label = data[0]
view = cs.compare(world.model, x, ["gradient_x_input", "gradcam", "lrp_epsilon_plus_flat", "rise"],
                  evidence={label: data.evidence_mask(0)}, picture=data.raw_image(0), classes=world.classes,
                  mean=world.mean, std=world.std, options={"rise": {"masks": 200}})
view
"""
READY = ".cs-compare[data-ready='true'] .cs-tile img"


@pytest.fixture(scope="module")
def notebook(lab, browser):
    with notebook_page(lab, browser, "compare.ipynb", [SETUP], READY, {"width": 1200, "height": 900}) as session:
        yield session


def tile_methods(page) -> list[str]:
    return page.eval_on_selector_all(".cs-compare .cs-tile", "nodes => nodes.map(n => n.dataset.method)")


def test_tiles_show_python_s_methods_and_a_click_shows_their_scores(lab, notebook, artifacts: Path):
    page, kernel = notebook
    kernel.run("view.wait(60)")
    assert tile_methods(page) == ["gradient_x_input", "gradcam", "lrp_epsilon_plus_flat", "rise"]
    headline = page.locator(".cs-compare .cs-tile[data-method='gradcam'] .cs-score").text_content()
    expected = kernel.json("view.scores['gradcam']")
    assert headline == f"mass_accuracy {expected['mass_accuracy']:.2f}"
    page.locator(".cs-compare .cs-tile[data-method='lrp_epsilon_plus_flat']").click()
    page.wait_for_selector(".cs-compare .cs-detail[data-method='lrp_epsilon_plus_flat'] tr")
    shown = page.eval_on_selector_all(".cs-compare .cs-detail tr",
                                      "rows => rows.map(r => [r.dataset.metric, Number(r.dataset.value)])")
    scores = kernel.json("view.scores['lrp_epsilon_plus_flat']")
    assert dict(shown) == pytest.approx(scores)
    assert kernel.json("view.selected") == "lrp_epsilon_plus_flat"
    # the drawn image is the one Python encoded: the enlarged picture's natural size is the input's
    size = page.eval_on_selector(".cs-compare .cs-detail img", "img => [img.naturalWidth, img.naturalHeight]")
    assert size == [64, 64]
    page.locator(".cs-compare").screenshot(path=artifacts / f"compare_view_{lab.comm_mode}.png")


def test_another_class_recomputes_every_method(lab, notebook, artifacts: Path):
    page, kernel = notebook
    label, classes = kernel.json("label"), kernel.json("world.classes")
    other = (label + 1) % len(classes)
    before = kernel.json("{k: float(v.sum()) for k, v in view.maps.items()}")
    page.locator(".cs-compare select").select_option(str(other))
    page.wait_for_function(f"() => document.querySelector('.cs-compare select').value === '{other}'")
    kernel.run(f"import time\nwhile view.target != {other}: time.sleep(0.05)\nview.wait(60)")
    page.wait_for_selector(READY, timeout=30_000)
    after = kernel.json("{k: float(v.sum()) for k, v in view.maps.items()}")
    assert set(after) == set(before) and all(after[k] != before[k] for k in after)
    assert kernel.json("[view.graded, view.busy]") == [False, False]
    scores = page.eval_on_selector_all(".cs-compare .cs-score", "nodes => nodes.map(n => n.textContent)")
    assert scores == ["", "", "", ""]  # no ground truth for this class
    assert page.locator(".cs-compare .cs-error").is_hidden()
    page.locator(".cs-compare").screenshot(path=artifacts / f"compare_view_other_class_{lab.comm_mode}.png")
    kernel.run(f"view.set_target({label}); view.wait(60)")
