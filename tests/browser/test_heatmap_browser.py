"""HeatmapView in a real JupyterLab + chromium: clicks reach Python and the answer is drawn.

Run with ``pytest -m browser tests/browser``. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _jupyter import Kernel, notebook_page

pytestmark = pytest.mark.browser

# A real LRP heatmap of a shapes-world test image, computed in the kernel.
RELEVANCE = """
world = cs.load_world("shapes")
data = world.dataset("test", n=4)
image, (x, label) = data.raw_image(0), data[0]
relevance = cs.Explainer(world.model).heatmap(x).numpy()
print("shapes world", relevance.shape)
"""
SETUP = """
import threading
import numpy as np
import conceptscope as cs
from conceptscope.widgets import HeatmapView
from conceptscope.render import overlay, relevance_to_rgba
"""
SHOW = """
handler_threads = []
view = HeatmapView(image, relevance, colormap="bwr", opacity=0.6)
view.observe(lambda change: handler_threads.append(threading.current_thread().name), "last_result")
view
"""


@pytest.fixture(scope="module")
def notebook(lab, browser):
    """One notebook with the view per comm mode, shared by the tests (each resets what it changes)."""
    with notebook_page(lab, browser, "heatmap.ipynb", [SETUP, RELEVANCE, SHOW],
                       ".cs-heatmap canvas:not([data-frame='0'])", {"width": 1200, "height": 800}) as session:
        yield session


@pytest.fixture
def nb(notebook):
    """The shared notebook with the view reset: bwr, opacity 0.6, the real relevance map, no error."""
    page, kernel = notebook
    kernel.run("view.colormap = 'bwr'; view.opacity = 0.6; view.set_heatmap(relevance); handler_threads.clear()")
    page.wait_for_function("() => document.querySelector('.cs-heatmap input[type=range]').value === '0.6'")
    return page, kernel


def click_pixel(page, x: int, y: int, width: int, height: int) -> None:
    canvas = page.locator(".cs-heatmap canvas")
    box = canvas.bounding_box()
    canvas.click(position={"x": (x + 0.5) * box["width"] / width, "y": (y + 0.5) * box["height"] / height})


def canvas_state(page) -> dict:
    """The canvas' size, frame counter and a digest of its pixels."""
    return page.evaluate("""() => {
        const c = document.querySelector(".cs-heatmap canvas");
        const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let hash = 0;
        for (let i = 0; i < data.length; i++) hash = (hash * 31 + data[i]) >>> 0;
        return { frame: Number(c.dataset.frame), hash, width: c.width, height: c.height };
    }""")


def expect_composite(page, kernel: Kernel, x: int, y: int, colormap: str, opacity: float) -> None:
    """The canvas shows image pixel (x, y) as image and heatmap blended like render.overlay does."""
    width = kernel.json("relevance.shape[1]")
    expected = kernel.json(
        f"overlay(image, relevance_to_rgba(relevance, {colormap!r}, alpha=True), {opacity})[{y}, {x}].tolist()"
    )
    drawn = page.evaluate(
        """([x, y, width]) => {
            const c = document.querySelector(".cs-heatmap canvas");
            const scale = c.width / width;
            const at = (v) => Math.floor((v + 0.5) * scale);
            return [...c.getContext("2d").getImageData(at(x), at(y), 1, 1).data];
        }""",
        [x, y, width],
    )
    assert drawn[3] == 255 and all(abs(a - b) <= 2 for a, b in zip(drawn[:3], expected)), (drawn, expected)


def wait_for_status(page, prefix: str) -> None:
    page.wait_for_function(
        "(prefix) => document.querySelector('.cs-heatmap .cs-status')?.textContent.startsWith(prefix)",
        arg=prefix, timeout=15_000,
    )


def expect_kernel_threads(kernel: Kernel, lab) -> None:
    """Check that the comm-mode setting took effect, so both code paths really were exercised.

    With subshells, JupyterLab sends a comm's first message to the main shell while it creates
    the subshell, and later ones to the subshell thread.
    """
    threads = kernel.json("handler_threads")
    assert len(threads) >= 2, "requests did not reach Python"
    subshells = "kernel subshells" in kernel.client.kernel_info(reply=True)["content"].get("supported_features", [])
    if lab.comm_mode == "disabled" or not subshells:
        assert set(threads) == {"MainThread"}
    else:
        assert threads[-1].startswith("subshell"), threads


def test_click_shows_relevance_computed_by_python(lab, nb, artifacts: Path):
    page, kernel = nb
    height, width = kernel.json("relevance.shape")
    # the pixel of largest |relevance|, and one far from it to check the composite colours
    py, px = kernel.json("[int(i) for i in np.unravel_index(np.abs(relevance).argmax(), relevance.shape)]")
    qx, qy = (px + width // 2) % width, (py + height // 2) % height
    # a first click (which, with subshells, JupyterLab sends to the main shell)
    click_pixel(page, qx, qy, width, height)
    wait_for_status(page, f"relevance at ({qx}, {qy}): ")
    before = canvas_state(page)
    assert (before["width"], before["height"]) == (width * (256 // width), height * (256 // width))

    click_pixel(page, px, py, width, height)
    wait_for_status(page, f"relevance at ({px}, {py}): ")
    status = page.locator(".cs-heatmap .cs-status")
    text, shown = status.text_content(), float(status.get_attribute("data-value"))
    result = kernel.json("view.last_result")
    known = kernel.json(f"float(relevance[{py}, {px}])")

    assert result["type"] == "pixel_result" and (result["x"], result["y"]) == (px, py)
    assert result["value"] == known == shown
    assert float(text.rsplit(": ", 1)[1]) == pytest.approx(known, rel=5e-4)
    assert page.locator(".cs-heatmap .cs-error").is_hidden()

    after = canvas_state(page)
    assert after["frame"] > before["frame"] and after["hash"] != before["hash"]
    expect_composite(page, kernel, qx, qy, "bwr", 0.6)  # away from the marker, now at (px, py)
    expect_kernel_threads(kernel, lab)
    page.locator(".cs-heatmap").screenshot(path=artifacts / f"heatmap_view_{lab.comm_mode}.png")
    page.screenshot(path=artifacts / "heatmap_view.png")


def test_python_error_is_shown_and_next_click_works(lab, nb, artifacts: Path):
    page, kernel = nb
    try:
        height, width = kernel.json("relevance.shape")
        kernel.run("view.relevance_at = lambda x, y: 1 / 0")
        click_pixel(page, 3, 4, width, height)
        error = page.locator(".cs-heatmap .cs-error")
        error.wait_for(state="visible", timeout=15_000)
        assert error.text_content() == "Error: ZeroDivisionError: division by zero"
        last = kernel.json("view.last_result")
        assert (last["type"], last["message"]) == ("error", "ZeroDivisionError: division by zero")
        page.locator(".cs-heatmap").screenshot(path=artifacts / f"heatmap_view_error_{lab.comm_mode}.png")

        kernel.run("del view.relevance_at")
        click_pixel(page, 10, 12, width, height)
        wait_for_status(page, "relevance at (10, 12): ")
        assert error.is_hidden()
        known = kernel.json("float(relevance[12, 10])")
        assert float(page.locator(".cs-heatmap .cs-status").get_attribute("data-value")) == known
        assert kernel.json("view.last_result")["value"] == known
    finally:
        kernel.run("view.__dict__.pop('relevance_at', None)")


def test_controls_sync_both_ways(nb):
    page, kernel = nb
    frame = canvas_state(page)["frame"]
    page.locator(".cs-heatmap select.cs-colormap").select_option("coldnhot")
    deadline = time.monotonic() + 10
    while kernel.json("view.colormap") != "coldnhot" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernel.json("view.colormap") == "coldnhot"
    page.wait_for_function(f"() => Number(document.querySelector('.cs-heatmap canvas').dataset.frame) > {frame}")

    kernel.run("view.opacity = 0.2")
    page.wait_for_function("() => document.querySelector('.cs-heatmap input[type=range]').value === '0.2'")
    expect_composite(page, kernel, 20, 30, "coldnhot", 0.2)

    page.locator(".cs-heatmap select.cs-overlay").select_option("contour")  # the display: the view's to choose
    deadline = time.monotonic() + 10
    while kernel.json("view.overlay") != "contour" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernel.json("view.overlay") == "contour"
    kernel.run("view.overlay = 'side-by-side'")
    page.wait_for_function("() => document.querySelector('.cs-heatmap canvas').dataset.overlay === 'side-by-side'")
    kernel.run("view.overlay = 'overlay'")
    page.wait_for_function("() => document.querySelector('.cs-heatmap canvas').dataset.overlay === 'overlay'")


def test_a_refused_control_value_is_reverted_in_the_view_and_shown(lab, nb, artifacts: Path):
    """The view sends a colormap Python refuses (an option injected into the page): the kernel keeps its value and
    sends it back, the select shows it again and the error line says why."""
    page, kernel = nb
    try:
        page.evaluate("() => document.querySelector('.cs-heatmap select.cs-colormap')"
                      ".append(new Option('evil', 'evil'))")
        page.locator(".cs-heatmap select.cs-colormap").select_option("evil")
        error = page.locator(".cs-heatmap .cs-error")
        error.wait_for(state="visible", timeout=15_000)
        assert error.text_content().startswith("Error: colormap: ") and "'evil'" in error.text_content()
        page.wait_for_function("() => document.querySelector('.cs-heatmap select.cs-colormap').value === 'bwr'")
        assert kernel.json("view.colormap") == "bwr"
        page.locator(".cs-heatmap").screenshot(path=artifacts / f"heatmap_view_refused_{lab.comm_mode}.png")
    finally:
        kernel.run("view.error = ''")
        page.evaluate("() => document.querySelector('.cs-heatmap select.cs-colormap option[value=evil]')?.remove()")
