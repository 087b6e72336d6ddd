"""PerturbationView in a real JupyterLab + chromium: moving the slider removes the most relevant pixels, the picture
and the probabilities follow (the latest position wins), and the unit switches to concepts.

Run with ``pytest -m browser tests/browser/test_perturbation_browser.py``. Screenshots go to ``test-artifacts/``.
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
view = cs.perturb(world.model, x, methods=["lrp_epsilon_plus_flat", "saliency"], picture=data.raw_image(0),
                  classes=world.classes, mean=world.mean, std=world.std)
view
"""
READY = ".cs-perturbation img[src^='blob:']"


@pytest.fixture(scope="module")
def notebook(lab, browser):
    with notebook_page(lab, browser, "perturbation.ipynb", [SETUP], READY, {"width": 900, "height": 700}) as session:
        yield session


def set_slider(page, value):
    page.eval_on_selector(".cs-perturbation .cs-slider",
                          f"s => {{ s.value = '{value}'; s.dispatchEvent(new Event('input')); }}")


def shown_probabilities(page):
    return page.eval_on_selector_all(".cs-perturbation .cs-class",
                                     "rows => rows.map(r => [Number(r.dataset.index), Number(r.dataset.probability)])")


def test_the_slider_removes_pixels_and_the_prediction_follows(lab, notebook, artifacts: Path):
    page, kernel = notebook
    kernel.run("view.wait(60)")
    before = dict(shown_probabilities(page))
    target = kernel.json("view.target")
    for value in (10, 60, 30):  # quick moves: the last position wins
        set_slider(page, value)
    page.wait_for_function("() => document.querySelector('.cs-perturbation .cs-caption').textContent"
                           ".startsWith('removed 30 %')", timeout=30_000)
    kernel.run("view.wait(60)")
    assert kernel.json("[view.fraction, view.removed]") == [0.3, round(0.3 * 64 * 64)]
    after = dict(shown_probabilities(page))
    expected = kernel.json("{p['index']: p['probability'] for p in view.probabilities}")
    assert after == pytest.approx({int(k): v for k, v in expected.items()})
    assert after[target] < before[target]
    assert page.locator(".cs-perturbation .cs-error").is_hidden()
    page.locator(".cs-perturbation").screenshot(path=artifacts / f"perturbation_view_{lab.comm_mode}.png")


def test_switching_to_concepts_removes_concepts(lab, notebook):
    page, kernel = notebook
    page.locator(".cs-perturbation .cs-unit").select_option("concepts")
    page.wait_for_function("() => document.querySelector('.cs-perturbation .cs-caption').textContent"
                           ".includes('concepts of')", timeout=30_000)
    kernel.run("view.wait(60)")
    assert kernel.json("[view.unit, view.total]") == ["concepts", 64]
    assert page.locator(".cs-perturbation .cs-method").is_disabled()
    kernel.run("view.set_unit('pixels'); view.wait(60)")
