"""The explorer on the shapes world's segmenter in a real JupyterLab + chromium (L-CRP): a click on a predicted segment
in the heatmap explains that segment (the target view marks it, Python holds the region's heatmap and the canvas draws
it), a concept then shows its conditional heatmap for that segment, and the segment list picks one too."""

from __future__ import annotations

import time

import pytest
from _jupyter import notebook_page
from test_explorer_browser import (
    HEATMAP,
    KERNEL_TIMEOUT,
    canvas_pixel,
    expect_concept_drawn,
    rows,
    wait_idle,
    wait_shown,
)

pytestmark = pytest.mark.browser

SETUP = """
import numpy as np, torch
from scipy import ndimage
import conceptscope as cs
from conceptscope.engine.segments import predicted_segments
from conceptscope.render import overlay, relevance_to_rgba
from conceptscope.widgets import explore
from conceptscope.world.segmentation import segment_classes
world = cs.load_world("shapes")
classes = segment_classes(world)
segmenter = world.load_model("segmenter")
xp = cs.Explainer(segmenter, classes=classes)
data = world.dataset("test", n=64)
def two_objects(i):
    with torch.no_grad():
        found = predicted_segments(segmenter(data[i][0][None])[0], (64, 64), classes)
    return len(found) >= 2 and found[1].mask.sum() >= 30
index = next(i for i in range(len(data)) if two_objects(i))
def inside(mask):
    y, x = np.unravel_index(ndimage.distance_transform_edt(mask).argmax(), mask.shape)
    return [int(x), int(y)]
def region_heatmap(k):
    segment = ex.controller.subject.segments[k]
    return xp.heatmap(ex.controller.subject.image, cs.Region(segment.cls, segment.mask)).numpy()
"""
SHOW = """
ex = explore(xp, data[index][0], picture=data.raw_image(index), layer="backbone.fuse.0")
ex
"""


@pytest.fixture(scope="module")
def notebook(lab, browser):
    with notebook_page(lab, browser, "segmenter.ipynb", [SETUP, SHOW], ".cs-concepts li[data-channel]",
                       {"width": 1400, "height": 1500}) as session:
        yield session


def pressed_segment(page) -> str | None:
    return page.evaluate("() => document.querySelector('.cs-target .cs-segment[aria-pressed=true]')?.dataset.index")


def expect_heatmap_drawn(page, kernel, avoid: tuple[int, int] = (-9, -9), timeout: float = 30) -> None:
    """The canvas shows the picture blended with the heatmap Python holds, at its strongest pixel (once drawn) away
    from the marker the view draws around a clicked pixel ``avoid``."""
    y, x = kernel.json(f"[int(i) for i in np.unravel_index(np.abs(ex.heatmap.relevance * (np.maximum(*np.abs(np.mgrid["
                       f":64, :64] - np.array([{avoid[1]}, {avoid[0]}])[:, None, None])) > 3)).argmax(), (64, 64))]")
    expected = kernel.json(f"overlay(ex.controller.subject.picture, relevance_to_rgba(ex.heatmap.relevance, "
                           f"ex.heatmap.colormap, alpha=True), ex.heatmap.opacity)[{y}, {x}].tolist()")
    deadline = time.monotonic() + timeout
    while True:
        drawn = canvas_pixel(page, HEATMAP, x, y, 64)
        if drawn[3] == 255 and all(abs(a - b) <= 2 for a, b in zip(drawn[:3], expected)):
            return
        assert time.monotonic() < deadline, (drawn, expected)
        time.sleep(0.05)


def click_pixel(page, x: int, y: int) -> None:
    box = page.locator(HEATMAP).bounding_box()
    scale = box["width"] / 64
    page.mouse.click(box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale)


def test_click_a_segment_then_a_concept(lab, notebook, artifacts):
    page, kernel = notebook
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    segments = kernel.json("[s['name'] for s in ex.target.segments]")
    shown = page.evaluate("() => [...document.querySelectorAll('.cs-target .cs-segment')].map((b) => b.textContent)")
    assert [text.rsplit(" ", 2)[0] for text in shown] == segments and pressed_segment(page) == "0"
    assert kernel.json("bool(np.allclose(ex.heatmap.relevance, region_heatmap(0), atol=1e-6))")
    expect_heatmap_drawn(page, kernel)
    before = canvas_pixel(page, HEATMAP, *kernel.json("inside(ex.controller.subject.segments[1].mask)"), 64)

    # a click on the second segment in the heatmap explains that segment alone
    x, y = kernel.json("inside(ex.controller.subject.segments[1].mask)")
    click_pixel(page, x, y)
    page.wait_for_function("() => document.querySelector('.cs-target .cs-segment[aria-pressed=true]')?.dataset.index"
                           " === '1'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    wait_idle(page)
    assert kernel.json("ex.controller.segment") == 1
    assert kernel.json("bool(np.allclose(ex.heatmap.relevance, region_heatmap(1), atol=1e-6))")
    assert kernel.json("float(np.abs(ex.heatmap.relevance - region_heatmap(0)).max())") > 1e-3
    expect_heatmap_drawn(page, kernel, avoid=(x, y))
    assert canvas_pixel(page, HEATMAP, x, y, 64) != before  # the page shows the new map (and the marker) there
    expected = kernel.json("[c.channel for c in xp.explain(ex.controller.subject.image, ex.controller.subject.target)"
                           ".top_concepts(ex.concepts.layer, ex.concepts.k)]")
    assert [channel for _, channel in rows(page)] == expected
    page.locator(".widget-vbox").first.screenshot(path=artifacts / f"segmenter_segment_{lab.comm_mode}.png")

    # a concept: its conditional heatmap for this segment appears
    layer, channel = rows(page)[0]
    page.locator(f".cs-concepts li[data-channel='{channel}']").click()
    wait_shown(page, f"{layer} #{channel}")
    assert kernel.json(f"""bool(np.allclose(ex.heatmap.concept_relevance, xp.explain(ex.controller.subject.image,
        ex.controller.subject.target).conditional_heatmaps({layer!r}, [{channel}])[0].numpy(), atol=1e-6))""")
    expect_concept_drawn(page, kernel)
    page.locator(".widget-vbox").first.screenshot(path=artifacts / f"segmenter_concept_{lab.comm_mode}.png")

    # the segment list picks the first one again
    page.locator(".cs-target .cs-segment[data-index='0']").click()
    page.wait_for_function("() => document.querySelector('.cs-target .cs-segment[aria-pressed=true]')?.dataset.index"
                           " === '0'", timeout=30_000)
    kernel.run(f"assert ex.wait({KERNEL_TIMEOUT})")
    assert kernel.json("bool(np.allclose(ex.heatmap.relevance, region_heatmap(0), atol=1e-6))")
    assert kernel.json("[v.error for v in ex.views if v.error]") == []
