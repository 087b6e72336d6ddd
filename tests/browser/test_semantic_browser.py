"""The semantic search of the explorer in a real JupyterLab + chromium: a typed query shows the concepts the lens
finds, a click on one shows it in the explorer (heatmap, tree), the audit shows the lens's audit, and an empty query
shows an error. One notebook, in JupyterLab's default comm mode (widget messages on a kernel subshell thread).
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import pytest
from _jupyter import notebook_page
from test_explorer_browser import HEATMAP, KERNEL_TIMEOUT, expect_concept_drawn, wait_idle, wait_shown

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True)]

SETUP = """
import tempfile
import numpy as np, torch
import conceptscope as cs
from conceptscope.render import overlay, relevance_to_rgba
from conceptscope.semantics import SemanticLens
world = cs.load_world("shapes")
xp = cs.Explainer(world.model)
data = world.dataset("test", n=60)
atlas = cs.Atlas.build(xp, data, ["features.11", "features.15"], tempfile.mkdtemp() + "/atlas", k=8, progress=False)
lens = SemanticLens(atlas, world.clip, n=8, crop="none", progress=False)  # whole images: quick to embed
"""
SHOW = """
ex = cs.explore(xp, data[3][0], lens=lens, vocabulary=["red", "green", "blue", "circle", "square", "striped"],
                picture=data.raw_image(3))
ex
"""
READY = ".cs-search .cs-query"
SEARCH = ".cs-search"


@pytest.fixture(scope="module")
def nb(lab, browser):
    viewport = {"width": 1400, "height": 1600}
    with notebook_page(lab, browser, "semantic.ipynb", [SETUP, SHOW], READY, viewport) as session:
        wait_idle(session[0])
        yield session


def search(page, kernel, query: str) -> list[list]:
    """Type ``query`` and press Enter; wait until the hits are shown; return them as [layer, channel]."""
    box = page.locator(f"{SEARCH} .cs-query")
    box.fill(query)
    box.press("Enter")
    page.wait_for_function(f"(q) => document.querySelector('{SEARCH} .cs-summary').textContent.includes(`\"${{q}}\"`)",
                           arg=query, timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    return page.evaluate(f"""() => [...document.querySelectorAll('{SEARCH} .cs-hits tbody tr')]
        .map((tr) => [tr.dataset.layer, Number(tr.dataset.channel)])""")


def test_query_shows_hits_and_a_click_shows_the_concept_in_the_explorer(lab, nb, artifacts):
    page, kernel = nb
    shown = search(page, kernel, "red")
    assert shown == kernel.json("[[h.layer, h.channel] for h in lens.search('red', k=ex.search.k)]")
    assert kernel.json("ex.search.query") == "red"
    # labels, scores and reference thumbnails are drawn for every hit
    cells = page.evaluate(f"""() => [...document.querySelectorAll('{SEARCH} .cs-hits tbody tr')].map((tr) =>
        [tr.querySelector('.cs-label').textContent, tr.querySelector('.cs-clarity').textContent,
         tr.querySelectorAll('.cs-refs img').length])""")
    labels = kernel.json("[h['label'] or '–' for h in ex.search.hits]")
    assert [c[0] for c in cells] == labels and all(c[1] != "" and c[2] == 4 for c in cells)
    # a click selects the concept in the explorer: its conditional heatmap, its tree
    layer, channel = shown[1]
    page.locator(f"{SEARCH} .cs-hits tr[data-layer='{layer}'][data-channel='{channel}']").click()
    label = kernel.json(f"ex.controller.label({layer!r}, {channel})")  # the lens' label, or "unlabelled"
    wait_shown(page, f"{label} ({layer} #{channel})" if label else f"{layer} #{channel}")
    page.wait_for_function(f"() => document.querySelector('.cs-tree .cs-node.cs-selected')?.dataset.path"
                           f" === '{layer}:{channel}'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    assert kernel.json("ex.search.selected") == {"layer": layer, "channel": channel}
    assert kernel.json("ex.tree.tree['path']") == [[layer, channel]]
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.concept_relevance,
        xp.explain(ex.controller.subject.image).conditional_heatmaps({layer!r}, [{channel}])[0].numpy(), atol=1e-6))""")
    expect_concept_drawn(page, kernel)
    row = page.locator(f"{SEARCH} .cs-hits tr[data-channel='{channel}'][data-layer='{layer}']")
    assert row.get_attribute("aria-selected") == "true"
    page.locator(".widget-vbox").first.screenshot(path=artifacts / "semantic_search.png")


def test_audit_shows_the_lens_audit(lab, nb, artifacts):
    page, kernel = nb
    cls = kernel.json("world.classes[2]")
    page.locator(f"{SEARCH} .cs-class").select_option(cls)
    page.locator(f"{SEARCH} .cs-valid").fill("red, circle")
    page.locator(f"{SEARCH} .cs-spurious").fill("striped")
    page.locator(f"{SEARCH} .cs-run-audit").click()
    page.wait_for_selector(f"{SEARCH} .cs-audit tbody tr", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    expected = kernel.json(f"lens.audit({cls!r}, ['red', 'circle'], ['striped']).to_dict()")
    assert kernel.json("ex.search.audit") == expected
    drawn = page.evaluate(f"""() => [...document.querySelectorAll('{SEARCH} .cs-audit-layer')].map((section) =>
        [section.dataset.layer, section.querySelector('h4').textContent,
         [...section.querySelectorAll('tbody tr')].map((tr) => [Number(tr.dataset.channel), tr.dataset.verdict])])""")
    assert [[d[0], d[2]] for d in drawn] == [
        [layer["layer"], [[c["channel"], c["verdict"]] for c in layer["concepts"]]] for layer in expected["layers"]]
    share = expected["layers"][0]["spurious_share"]
    assert f"{share * 100:.1f} % spurious" in drawn[0][1]
    page.locator(f"{SEARCH} .cs-audit").screenshot(path=artifacts / "semantic_audit.png")


def test_empty_query_shows_an_error_and_the_next_query_works(lab, nb):
    page, kernel = nb
    box = page.locator(f"{SEARCH} .cs-query")
    box.fill("  ")
    box.press("Enter")
    error = page.locator(f"{SEARCH} .cs-error")
    error.wait_for(state="visible", timeout=30_000)
    assert "the query is empty" in error.text_content()
    assert "the query is empty" in kernel.json("ex.search.error")
    expected = kernel.json("[[h.layer, h.channel] for h in lens.search('blue', k=ex.search.k)]")
    assert search(page, kernel, "blue") == expected
    assert error.is_hidden() and kernel.json("ex.search.error") == ""
    assert page.locator(HEATMAP).count() == 1
