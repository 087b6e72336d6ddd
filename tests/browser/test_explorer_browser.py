"""The explorer in a real JupyterLab + chromium: each interaction reaches Python, computes the right thing
and the page shows it. One notebook per comm mode is shared by the interaction checks, which read the
current state from the kernel instead of assuming an order. Screenshots go to ``test-artifacts/``.

Also: the explorer in Notebook 7, and its static HTML export opened without network.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _jupyter import notebook_page, open_notebook

pytestmark = pytest.mark.browser

SETUP = """
import tempfile, time
import numpy as np, torch
import conceptscope as cs
from conceptscope.atlas import Atlas
from conceptscope.render import overlay, relevance_to_rgba
from conceptscope.widgets import explore
world = cs.load_world("shapes")
xp = cs.Explainer(world.model)
data = world.dataset("test", n=64)
"""
ATLAS = """
atlas = Atlas.build(xp, data, ["features.15", "features.11"], tempfile.mkdtemp() + "/atlas", k=16, progress=False)
"""
SHOW = """
x, label = data[3]
ex = explore(xp, x, atlas=atlas, picture=data.raw_image(3))
ex
"""
SHOW_NO_ATLAS = """
x, label = data[3]
ex = explore(xp, x, picture=data.raw_image(3), classes=world.classes)
ex
"""
READY = ".cs-concepts li[data-channel]"
HEATMAP = ".cs-heatmap canvas"
KERNEL_TIMEOUT = 30


@pytest.fixture(scope="module")
def notebook(lab, browser):
    """One explorer notebook per comm mode, shared by the interaction checks."""
    with notebook_page(lab, browser, "explorer.ipynb", [SETUP, ATLAS, SHOW], READY,
                       {"width": 1400, "height": 1500}) as session:
        yield session


@pytest.fixture
def nb(notebook):
    """The shared explorer, idle, without a region or an error."""
    page, kernel = notebook
    kernel.run(f"ex.heatmap.region = []; assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    return page, kernel


# -- page helpers ---------------------------------------------------------------------------------------
def wait_idle(page) -> None:
    """Wait until no view is busy and the concept list is filled."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cs-view')].every((v) => v.dataset.busy !== 'true')"
        " && document.querySelector('.cs-concepts li[data-channel]')",
        timeout=30_000,
    )


def wait_shown(page, label: str) -> None:
    """Wait until the heatmap canvas has drawn the conditional heatmap of ``label``."""
    page.wait_for_function(f"(label) => document.querySelector('{HEATMAP}').dataset.shown === label",
                           arg=label, timeout=30_000)


def rows(page) -> list[tuple[str, int]]:
    return page.evaluate("""() => [...document.querySelectorAll('.cs-concepts li')]
        .map((li) => [li.dataset.layer, Number(li.dataset.channel)])""")


def click_row(page, channel: int) -> None:
    page.locator(f".cs-concepts li[data-channel='{channel}']").click()


def canvas_pixel(page, selector: str, x: int, y: int, width: int) -> list[int]:
    return page.evaluate(
        """([selector, x, y, width]) => {
            const c = document.querySelector(selector);
            const scale = c.width / width;
            const at = (v) => Math.floor((v + 0.5) * scale);
            return [...c.getContext("2d").getImageData(at(x), at(y), 1, 1).data];
        }""",
        [selector, x, y, width],
    )


def expect_concept_drawn(page, kernel, selector: str = HEATMAP) -> None:
    """The canvas shows the picture blended with the concept heatmap Python holds, at its strongest pixel."""
    width = kernel.json("ex.heatmap.concept_relevance.shape[1]")
    y, x = kernel.json("[int(i) for i in np.unravel_index(np.abs(ex.heatmap.concept_relevance).argmax(), "
                       "ex.heatmap.concept_relevance.shape)]")
    expected = kernel.json(f"overlay(ex.controller.subject.picture, relevance_to_rgba(ex.heatmap.concept_relevance, "
                           f"ex.heatmap.colormap), ex.heatmap.opacity)[{y}, {x}].tolist()")
    drawn = canvas_pixel(page, selector, x, y, width)
    assert drawn[3] == 255 and all(abs(a - b) <= 2 for a, b in zip(drawn[:3], expected)), (drawn, expected)


def drag(page, selector: str, start: tuple[int, int], end: tuple[int, int], width: int) -> None:
    """Drag the mouse over a canvas from image pixel ``start`` to ``end``."""
    box = page.locator(selector).bounding_box()
    scale = box["width"] / width
    at = [(box["x"] + (px + 0.5) * scale, box["y"] + (py + 0.5) * scale) for px, py in (start, end)]
    page.mouse.move(*at[0])
    page.mouse.down()
    page.mouse.move(*at[1], steps=6)
    page.mouse.up()


def screenshot(page, artifacts: Path, name: str, lab) -> None:
    page.locator(".widget-vbox").first.screenshot(path=artifacts / f"explorer_{name}_{lab.comm_mode}.png")


# -- interactions -----------------------------------------------------------------------------------------
def test_select_concept_updates_heatmap_tree_and_gallery(lab, nb, artifacts):
    page, kernel = nb
    layer, channel = rows(page)[1]
    click_row(page, channel)
    label = f"{layer} #{channel}"
    wait_shown(page, label)
    assert kernel.json("ex.concepts.selected") == {"layer": layer, "channel": channel}
    assert kernel.json("ex.heatmap.concept_label") == label
    # what Python holds is the engine's conditional heatmap of that channel
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.concept_relevance,
        xp.explain(ex.controller.subject.image).conditional_heatmaps({layer!r}, [{channel}])[0].numpy(), atol=1e-6))""")
    expect_concept_drawn(page, kernel)
    assert page.locator(f".cs-concepts li[data-channel='{channel}']").get_attribute("aria-selected") == "true"
    # the tree is rooted at the concept and the gallery shows its RelMax references, best first
    page.wait_for_function(f"() => document.querySelector('.cs-tree .cs-node.cs-selected')?.dataset.path"
                           f" === '{layer}:{channel}'", timeout=30_000)
    wait_idle(page)
    indices = kernel.json(f"atlas.top({layer!r}, {channel}, 'relevance', n=ex.gallery.page_size)[0].tolist()")
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.cs-gallery figure')].map((f) => Number(f.dataset.index))")
    assert shown == indices
    assert page.locator(".cs-gallery .cs-title").text_content() == f"references of {label}"
    screenshot(page, artifacts, "select", lab)


def test_draw_region_reranks_concepts_inside_it(lab, nb, artifacts):
    page, kernel = nb
    width = kernel.json("ex.controller.subject.picture.shape[1]")
    drag(page, HEATMAP, (2, 3), (29, 33), width)
    box = [2, 3, 30, 34]
    page.wait_for_function("() => document.querySelector('.cs-concepts .cs-region').textContent.includes("
                           "'inside region (2, 3)–(30, 34)')", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    assert kernel.json("ex.heatmap.region") == box and kernel.json("ex.concepts.region") == box
    expected = kernel.json(f"""[[c.layer, c.channel] for c in xp.explain(ex.controller.subject.image,
        ex.controller.subject.target).top_concepts(ex.concepts.layer, ex.concepts.k,
        region=ex.controller.region_mask({box}))]""")
    whole = kernel.json("""[[c.layer, c.channel] for c in xp.explain(ex.controller.subject.image,
        ex.controller.subject.target).top_concepts(ex.concepts.layer, ex.concepts.k)]""")
    assert [list(r) for r in rows(page)] == expected != whole
    assert kernel.json("[[c['layer'], c['channel']] for c in ex.concepts.concepts]") == expected
    screenshot(page, artifacts, "region", lab)


def test_expand_tree_node_computes_its_children(lab, nb, artifacts):
    page, kernel = nb
    layer, channel = rows(page)[0]
    click_row(page, channel)
    page.wait_for_function(f"() => document.querySelector('.cs-tree .cs-node.cs-selected')?.dataset.path"
                           f" === '{layer}:{channel}'", timeout=30_000)
    wait_idle(page)
    child = kernel.json("ex.tree.tree['children'][0]['path']")
    key = "/".join(f"{lay}:{ch}" for lay, ch in child)
    node = page.locator(f".cs-tree .cs-node[data-path='{key}']")
    assert node.get_attribute("data-expanded") == "false"
    node.click()
    page.wait_for_function(f"() => document.querySelector(`.cs-tree .cs-node[data-path='{key}']`)"
                           f"?.dataset.expanded === 'true'", timeout=30_000)
    label = " → ".join(f"{lay} #{ch}" for lay, ch in child)
    wait_shown(page, label)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    assert kernel.json("ex.tree.selected") == child
    # the children Python computed are the engine's (a fresh composition two levels deep) and are drawn
    expected = kernel.json(f"""[c.path for c in xp.composition(ex.controller.subject.image, {layer!r}, {channel},
        target=ex.controller.subject.target, depth=2, top=ex.tree.top).children[0].children]""")
    expected_keys = ["/".join(f"{lay}:{ch}" for lay, ch in path) for path in expected]
    drawn = page.evaluate(f"() => [...document.querySelectorAll('.cs-tree .cs-node')].map((g) => g.dataset.path)"
                          f".filter((p) => p.startsWith('{key}/'))")
    assert drawn == expected_keys and expected_keys
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.concept_relevance, xp.conditional_heatmap(
        ex.controller.subject.image, {{l: [c] for l, c in {child!r}}}, ex.controller.subject.target).numpy(),
        atol=1e-6))""")
    expect_concept_drawn(page, kernel)
    # the tree's own panel shows the node's heatmap, and the gallery follows the node's concept
    assert page.locator(".cs-tree .cs-label").text_content() == label
    wait_idle(page)
    assert kernel.json("ex.gallery.concept") == {"layer": child[-1][0], "channel": child[-1][1]}
    screenshot(page, artifacts, "tree", lab)


def click_a_reference(page, kernel) -> tuple[str, int, int]:
    """Click the first listed concept, then the first of its references that is not the current image; once the
    explorer is idle, check that it explains that image. Return the concept's layer and channel and the image's
    dataset index."""
    layer, channel = rows(page)[0]
    click_row(page, channel)
    page.wait_for_function(f"() => document.querySelector('.cs-gallery .cs-title').textContent"
                           f" === 'references of {layer} #{channel}' && document.querySelector('.cs-gallery figure')",
                           timeout=30_000)
    wait_idle(page)
    index = kernel.json("[r['index'] for r in ex.gallery.references"
                        " if not torch.equal(data[r['index']][0], ex.controller.subject.image)][0]")
    frame = int(page.locator(HEATMAP).get_attribute("data-frame"))
    page.locator(f".cs-gallery figure[data-index='{index}']").click()
    page.wait_for_function(f"() => Number(document.querySelector('{HEATMAP}').dataset.frame) > {frame}")
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    assert kernel.json(f"bool(torch.equal(ex.controller.subject.image, data[{index}][0]))")
    return layer, channel, index


def test_click_gallery_image_loads_it(lab, nb, artifacts):
    page, kernel = nb
    layer, channel, index = click_a_reference(page, kernel)
    assert kernel.json("ex.gallery.picked") == index
    assert kernel.json(f"bool(np.array_equal(ex.controller.subject.picture, data.raw_image({index})))")
    # Python explains the new image, and the page shows its prediction and its concepts
    predicted = kernel.json(f"int(world.model(data[{index}][0][None]).argmax())")
    assert kernel.json("ex.target.predicted") == predicted
    page.wait_for_function(f"() => document.querySelector('.cs-target .cs-class[aria-pressed=true]')?.dataset.index"
                           f" === '{predicted}'", timeout=30_000)
    expected = kernel.json(
        f"[c.channel for c in xp.explain(data[{index}][0]).top_concepts(ex.concepts.layer, ex.concepts.k)]")
    assert [ch for _, ch in rows(page)] == expected
    wait_shown(page, f"{layer} #{channel}")
    expect_concept_drawn(page, kernel)
    screenshot(page, artifacts, "gallery_pick", lab)


def click_another_class(page, kernel) -> int:
    """Click the first listed class other than the predicted one; once the explorer is idle, check that it explains
    that class and shows its heatmap; return it."""
    other = kernel.json("[p['index'] for p in ex.target.predictions if p['index'] != ex.target.predicted][0]")
    page.locator(f".cs-target .cs-class[data-index='{other}']").click()
    page.wait_for_function(f"() => document.querySelector('.cs-target .cs-class[aria-pressed=true]')?.dataset.index"
                           f" === '{other}'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    assert kernel.json("ex.controller.subject.target") == other
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.relevance,
        xp.explain(ex.controller.subject.image, {other}).heatmap.numpy(), atol=1e-6))""")
    return other


def test_change_target_recomputes_everything(lab, nb, artifacts):
    page, kernel = nb
    assert not page.locator(".cs-target .cs-segments").is_visible()  # a classifier has no segments to pick
    predicted = kernel.json("ex.target.predicted")
    other = click_another_class(page, kernel)
    expected = kernel.json(f"""[c.channel for c in xp.explain(ex.controller.subject.image, {other})
        .top_concepts(ex.concepts.layer, ex.concepts.k)]""")
    assert [ch for _, ch in rows(page)] == expected
    assert page.locator(".cs-target .cs-class-select").input_value() == str(other)
    screenshot(page, artifacts, "target", lab)
    # back to the prediction through the dropdown
    page.locator(".cs-target .cs-class-select").select_option(str(predicted))
    page.wait_for_function(f"() => document.querySelector('.cs-target .cs-class[aria-pressed=true]')?.dataset.index"
                           f" === '{predicted}'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    assert kernel.json("ex.controller.subject.target") is None
    # the prediction rather than the other class: a contrast, chosen in "rather than"
    page.locator(".cs-target .cs-versus-select").select_option(str(other))
    page.wait_for_function(f"() => document.querySelector('.cs-target .cs-class.cs-versus')?.dataset.index"
                           f" === '{other}'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    assert kernel.json("str(ex.controller.subject.target)") == f"Contrast(a={predicted}, b={other}, kind='difference')"
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.relevance, xp.explain(ex.controller.subject.image,
        cs.Contrast({predicted}, {other})).heatmap.numpy(), atol=1e-6))""")
    screenshot(page, artifacts, "contrast", lab)
    page.locator(".cs-target .cs-versus-select").select_option("-1")
    page.wait_for_function("() => !document.querySelector('.cs-target .cs-class.cs-versus')", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    assert kernel.json("ex.controller.subject.target") is None


def test_rapid_clicks_end_on_the_last_one(lab, nb):
    page, kernel = nb
    listed = rows(page)
    order = [listed[i % len(listed)] for i in (2, 0, 3, 1, 4, 5)]
    for _, channel in order:
        click_row(page, channel)
    layer, channel = order[-1]
    wait_shown(page, f"{layer} #{channel}")
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    assert kernel.json("ex.concepts.selected") == {"layer": layer, "channel": channel}
    assert kernel.json("ex.heatmap.concept_label") == f"{layer} #{channel}"
    assert kernel.json("ex.gallery.concept") == {"layer": layer, "channel": channel}
    assert page.locator(HEATMAP).get_attribute("data-shown") == f"{layer} #{channel}"
    assert page.locator(".cs-concepts li[aria-selected=true]").get_attribute("data-channel") == str(channel)
    expect_concept_drawn(page, kernel)


def test_python_exception_is_shown_and_next_click_works(lab, nb, artifacts):
    page, kernel = nb
    (_, first), (layer, second) = rows(page)[3:5]
    kernel.run("""
def broken(path, top=5):
    time.sleep(0.6)
    raise RuntimeError("boom")
ex.controller.path_heatmap = broken
""")
    try:
        click_row(page, first)
        spinner = page.locator(".cs-heatmap .cs-busy")
        spinner.wait_for(state="visible", timeout=5_000)  # slow work: the busy indicator shows
        error = page.locator(".cs-heatmap .cs-error")
        error.wait_for(state="visible", timeout=30_000)
        assert spinner.is_hidden()
        assert error.text_content() == "Error: RuntimeError: boom"
        assert kernel.json("ex.heatmap.error") == "RuntimeError: boom"
        page.locator(".cs-heatmap").screenshot(path=artifacts / f"explorer_error_{lab.comm_mode}.png")
    finally:
        kernel.run("del ex.controller.path_heatmap")
    click_row(page, second)
    wait_shown(page, f"{layer} #{second}")
    assert error.is_hidden()
    assert kernel.json("ex.heatmap.error") == ""
    expect_concept_drawn(page, kernel)


# -- static export --------------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True)
def test_static_export_draws_without_kernel_or_network(lab, notebook, browser, artifacts):
    page, kernel = notebook
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    path = lab.root / "explorer_snapshot.html"
    kernel.run(f"ex.save_html({str(path)!r})")
    html = path.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    label, width = kernel.json("ex.heatmap.concept_label"), kernel.json("ex.controller.subject.picture.shape[1]")
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    try:
        static = context.new_page()
        requests = []
        static.on("request", lambda r: requests.append(r.url))
        static.goto(path.as_uri())
        static.wait_for_function(f"() => document.querySelector('{HEATMAP}')?.dataset.shown === {label!r}",
                                 timeout=15_000)
        expect_concept_drawn(static, kernel)
        assert static.locator(".cs-concepts li").count() == kernel.json("len(ex.concepts.concepts)")
        assert static.locator(".cs-gallery figure").count() == kernel.json("len(ex.gallery.references)")
        assert all(url.startswith(("file:", "blob:", "data:")) for url in requests), requests
        # a click has no kernel to answer it: the view says so and keeps working
        static.locator(".cs-concepts li").first.click()
        static.locator(".cs-concepts .cs-error").wait_for(state="visible")
        assert "not precomputed in this snapshot" in static.locator(".cs-concepts .cs-error").text_content()
        static.screenshot(path=artifacts / "explorer_static_export.png", full_page=True)
        assert width > 0
    finally:
        context.close()


# -- Notebook 7 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True)
def test_notebook7_renders_explorer_and_click_works(lab, browser, artifacts):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    kernel = open_notebook(lab, page, "explorer_nb7.ipynb", [SETUP, SHOW_NO_ATLAS], READY, ui="notebook")
    try:
        assert "/notebooks/" in page.url and page.locator(".jp-NotebookPanel").count() == 1
        layer, channel = rows(page)[1]
        click_row(page, channel)
        wait_shown(page, f"{layer} #{channel}")
        assert kernel.json("ex.heatmap.concept_label") == f"{layer} #{channel}"
        expect_concept_drawn(page, kernel)
        kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
        time.sleep(0.3)
        page.screenshot(path=artifacts / "explorer_notebook7.png", full_page=True)
    finally:
        kernel.close()
        context.close()


# -- themes -----------------------------------------------------------------------------------------------
CONTRAST = """(selector) => {
    const rgb = (text) => {
        const srgb = text.match(/color\\(srgb ([\\d.]+) ([\\d.]+) ([\\d.]+)(?: \\/ ([\\d.]+))?\\)/);
        if (srgb) return [...srgb.slice(1, 4).map((v) => Number(v) * 255), srgb[4] === undefined ? 1 : Number(srgb[4])];
        const [r, g, b, a] = text.match(/[\\d.]+/g).map(Number);
        return [r, g, b, a === undefined ? 1 : a];
    };
    const luminance = ([r, g, b]) => {
        const f = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (node) => {
        for (; node; node = node.parentElement) {
            const colour = rgb(getComputedStyle(node).backgroundColor);
            if (colour[3] > 0.5) return colour;
        }
        return [255, 255, 255, 1];
    };
    return [...document.querySelectorAll(selector)].map((node) => {
        const [fg, bg] = [luminance(rgb(getComputedStyle(node).color)), luminance(background(node))];
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        const what = `${node.className} ${node.textContent.slice(0, 20)}`;
        return [ratio, `${what}: ${getComputedStyle(node).color} on ${background(node)}`];
    });
}"""
TEXTS = (".cs-concepts li .cs-name, .cs-concepts li[aria-selected='true'] .cs-share, .cs-target .cs-class > span, "
         ".cs-heatmap .cs-caption, .cs-heatmap .cs-summary, .cs-gallery .cs-classes, .cs-tree .cs-label")


@pytest.mark.parametrize("theme", ["JupyterLab Dark", "JupyterLab Light"])
def test_views_follow_the_theme_with_readable_text(lab, nb, artifacts, theme):
    page, kernel = nb
    click_row(page, rows(page)[0][1])
    page.evaluate(f"async () => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    dark = theme.endswith("Dark")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{str(not dark).lower()}'", timeout=30_000)
    time.sleep(0.5)
    found = page.evaluate(CONTRAST, TEXTS)
    assert len(found) >= 10 and min(ratio for ratio, _ in found) >= 4.5, [text for ratio, text in found if ratio < 4.5]
    screenshot(page, artifacts, f"theme_{'dark' if dark else 'light'}", lab)
