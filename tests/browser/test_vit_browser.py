"""The explorer on the shapes ViT in a real JupyterLab + chromium, on its last block's output (the residual stream's
48 features; its relevance lies in the class token): a concept click, a region box, a tree expansion, a gallery click
and a class change each reach Python, compute what the engine computes, and change what the page shows. One notebook,
JupyterLab's default comm mode. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import pytest
from _jupyter import notebook_page
from test_explorer_browser import (
    HEATMAP,
    KERNEL_TIMEOUT,
    click_a_reference,
    click_another_class,
    click_row,
    drag,
    expect_concept_drawn,
    rows,
    wait_idle,
    wait_shown,
)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True)]

SETUP = """
import tempfile
import numpy as np, torch
import conceptscope as cs
from conceptscope.render import overlay, relevance_to_rgba
from conceptscope.semantics import SemanticLens
world = cs.load_world("shapes")
xp = cs.Explainer(world.vit, "attn_lrp")
data = world.dataset("test", n=40)
atlas = cs.Atlas.build(xp, data, ["blocks.3", "blocks.2"], tempfile.mkdtemp() + "/atlas", k=8, progress=False)
lens = SemanticLens(atlas, world.clip, n=8, crop="none", progress=False)  # whole images: quick to embed
"""
SHOW = """
ex = cs.explore(xp, data[3][0], lens=lens, picture=data.raw_image(3))
ex
"""
READY = ".cs-concepts li[data-channel]"
LAYER = "blocks.3"


@pytest.fixture(scope="module")
def notebook(lab, browser):
    with notebook_page(lab, browser, "vit_explorer.ipynb", [SETUP, SHOW], READY,
                       {"width": 1400, "height": 1600}) as session:
        wait_idle(session[0])
        yield session


@pytest.fixture
def nb(notebook):
    page, kernel = notebook
    kernel.run(f"ex.heatmap.region = []; assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    return page, kernel


def shown_relevance(kernel) -> list[float]:
    return kernel.json("np.round(ex.heatmap.concept_relevance.flatten()[::97], 6).tolist()")


def test_the_last_block_is_listed_and_a_concept_click_shows_its_heatmap_tree_and_references(lab, nb, artifacts):
    page, kernel = nb
    assert kernel.json("ex.concepts.layer or ex.controller.default_layer()") == LAYER
    listed = rows(page)
    assert {layer for layer, _ in listed} == {LAYER}
    expected = kernel.json(f"[c.channel for c in xp.explain(data[3][0]).top_concepts({LAYER!r}, ex.concepts.k)]")
    assert [channel for _, channel in listed] == expected
    before = shown_relevance(kernel) if kernel.json("ex.heatmap.concept_label") else None
    channel = listed[1][1]
    click_row(page, channel)
    wait_shown(page, f"{LAYER} #{channel}")
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.concept_relevance,
        xp.explain(ex.controller.subject.image).conditional_heatmaps({LAYER!r}, [{channel}])[0].numpy(), atol=1e-6))""")
    assert shown_relevance(kernel) != before and kernel.json("float(np.abs(ex.heatmap.concept_relevance).max())") > 0
    expect_concept_drawn(page, kernel)
    page.wait_for_function(f"() => document.querySelector('.cs-tree .cs-node.cs-selected')?.dataset.path"
                           f" === '{LAYER}:{channel}'", timeout=30_000)
    wait_idle(page)
    indices = kernel.json(f"atlas.top({LAYER!r}, {channel}, 'relevance', n=ex.gallery.page_size)[0].tolist()")
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.cs-gallery figure')].map((f) => Number(f.dataset.index))")
    assert shown == indices and len(shown) > 0
    page.locator(".widget-vbox").first.screenshot(path=artifacts / "vit_explorer_select.png")


def test_a_region_box_reranks_the_last_blocks_concepts_by_their_heatmaps_inside_it(lab, nb, artifacts):
    page, kernel = nb
    width = kernel.json("ex.controller.subject.picture.shape[1]")
    whole = [list(r) for r in rows(page)]
    drag(page, HEATMAP, (2, 3), (29, 33), width)
    page.wait_for_function("() => document.querySelector('.cs-concepts .cs-region').textContent.includes("
                           "'inside region (2, 3)–(30, 34)')", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    box = [2, 3, 30, 34]
    assert kernel.json("ex.concepts.region") == box
    # the engine's ranking inside the box: each concept's conditional heatmap summed over the box
    expected = kernel.json(f"""[[c.layer, c.channel, round(c.relevance, 6)] for c in xp.explain(
        ex.controller.subject.image).top_concepts({LAYER!r}, ex.concepts.k,
                                                  region=ex.controller.region_mask({box}))]""")
    check = kernel.json(f"""float(np.abs(xp.explain(ex.controller.subject.image).conditional_heatmaps({LAYER!r},
        [{expected[0][1]}])[0].numpy()[3:34, 2:30].sum() - {expected[0][2]}))""")
    assert check < 1e-4
    assert [list(r) for r in rows(page)] == [e[:2] for e in expected] != whole
    shares = kernel.json("[round(c['share'], 6) for c in ex.concepts.concepts]")
    assert shares[0] > 0
    page.locator(".widget-vbox").first.screenshot(path=artifacts / "vit_explorer_region.png")


def test_expanding_a_tree_node_computes_its_children(lab, nb, artifacts):
    page, kernel = nb
    layer, channel = rows(page)[0]
    click_row(page, channel)
    page.wait_for_function(f"() => document.querySelector('.cs-tree .cs-node.cs-selected')?.dataset.path"
                           f" === '{layer}:{channel}'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    root_map = shown_relevance(kernel)
    child = kernel.json("ex.tree.tree['children'][0]['path']")
    assert child[0] == [LAYER, channel] and child[1][0] != LAYER
    key = "/".join(f"{lay}:{ch}" for lay, ch in child)
    node = page.locator(f".cs-tree .cs-node[data-path='{key}']")
    assert node.get_attribute("data-expanded") == "false"
    node.click()
    page.wait_for_function(f"() => document.querySelector(`.cs-tree .cs-node[data-path='{key}']`)"
                           f"?.dataset.expanded === 'true'", timeout=30_000)
    wait_shown(page, " → ".join(f"{lay} #{ch}" for lay, ch in child))
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    expected = kernel.json(f"""[c.path for c in xp.composition(ex.controller.subject.image, {layer!r}, {channel},
        target=ex.controller.subject.target, depth=2, top=ex.tree.top).children[0].children]""")
    drawn = page.evaluate(f"() => [...document.querySelectorAll('.cs-tree .cs-node')].map((g) => g.dataset.path)"
                          f".filter((p) => p.startsWith('{key}/'))")
    assert drawn == ["/".join(f"{lay}:{ch}" for lay, ch in path) for path in expected] and drawn
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.concept_relevance, xp.conditional_heatmap(
        ex.controller.subject.image, {{l: [c] for l, c in {child!r}}}, ex.controller.subject.target).numpy(),
        atol=1e-6))""")
    assert shown_relevance(kernel) != root_map
    expect_concept_drawn(page, kernel)
    page.locator(".widget-vbox").first.screenshot(path=artifacts / "vit_explorer_tree.png")


def test_a_gallery_click_explains_that_image(lab, nb, artifacts):
    page, kernel = nb
    heatmap = kernel.json("np.round(ex.heatmap.relevance.flatten()[::97], 6).tolist()")
    layer, channel, index = click_a_reference(page, kernel)
    assert kernel.json(f"bool(np.allclose(ex.heatmap.relevance, xp.explain(data[{index}][0]).heatmap.numpy(), "
                       "atol=1e-6))")
    assert kernel.json("np.round(ex.heatmap.relevance.flatten()[::97], 6).tolist()") != heatmap
    predicted = kernel.json(f"int(world.vit(data[{index}][0][None]).argmax())")
    assert kernel.json("ex.target.predicted") == predicted
    expected = kernel.json(f"[c.channel for c in xp.explain(data[{index}][0]).top_concepts({LAYER!r}, ex.concepts.k)]")
    assert [ch for _, ch in rows(page)] == expected
    wait_shown(page, f"{layer} #{channel}")
    expect_concept_drawn(page, kernel)
    page.locator(".widget-vbox").first.screenshot(path=artifacts / "vit_explorer_gallery_pick.png")


def test_a_class_change_recomputes_the_heatmap_and_the_concepts(lab, nb, artifacts):
    page, kernel = nb
    heatmap = kernel.json("np.round(ex.heatmap.relevance.flatten()[::97], 6).tolist()")
    other = click_another_class(page, kernel)
    assert kernel.json("np.round(ex.heatmap.relevance.flatten()[::97], 6).tolist()") != heatmap
    ranked = kernel.json(f"""[[c.channel, round(c.relevance, 5)] for c in xp.explain(ex.controller.subject.image,
        {other}).top_concepts({LAYER!r}, ex.concepts.k)]""")
    assert [ch for _, ch in rows(page)] == [channel for channel, _ in ranked]
    assert kernel.json("[[c['channel'], round(c['relevance'], 5)] for c in ex.concepts.concepts]") == ranked
    assert ranked != kernel.json(f"""[[c.channel, round(c.relevance, 5)] for c in xp.explain(
        ex.controller.subject.image).top_concepts({LAYER!r}, ex.concepts.k)]""")
    page.locator(".widget-vbox").first.screenshot(path=artifacts / "vit_explorer_target.png")
    page.locator(".cs-target .cs-class-select").select_option(str(kernel.json("ex.target.predicted")))
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
