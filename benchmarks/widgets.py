"""Click -> new conditional heatmap on screen, in the real browser (JupyterLab + Debian chromium).

For each model an explorer is opened in a notebook (as the browser tests do) and a concept in the
concept list is clicked 30 times (a different row each time); the time from the click to the
heatmap canvas having drawn that concept's map, plus the next animation frame, is measured in the
page. Between clicks the explorer is left to finish its other work (tree, gallery), as a user
reading the result would. Two conditions:

- ``thumbnail cached``: the concept's conditional heatmap was computed (batched) for the list's
  thumbnails, so the click costs colormapping, PNG encoding, the round trips and drawing;
- ``uncached``: the controller's cache is cleared before each click, so the click also computes
  the conditional heatmap (a backward pass; the forward pass stays cached by the explainer).

Models: the shapes world CNN (64 px, with an atlas), the shapes world ViT (``shapes_vit``: AttnLRP,
concepts of its last block's output, with an atlas) and torchvision VGG16 with random weights
(224 px, no atlas), on the CPU. Also reported: one conditional heatmap's compute time for each,
measured in the same kernel, in turn with the clicks (``_common.in_turn``: a warm-up round, then
one compute per click; medians). Targets: shapes and shapes_vit p50 <= 150 ms; VGG16 p50 <= 1.5 x its compute
time.

The segment case (L-CRP; ``--segment-clicks``, written to ``results/widgets_segment.json``): the explorer on the
shapes world's segmenter, clicks alternating between two predicted segments in the heatmap; the time from the click
to the canvas showing the clicked segment's heatmap (a probe pixel where the two segments' maps differ has that map's
colour), plus the next frame. Nothing is cached (the explainer keeps no explanations, the controller's cache is
cleared before each click), so each click computes the segment's explanation (forward and backward pass). In turn
with it, the kernel's own compute of one segment's heatmap. Target: p50 <= 300 ms.

Run: ``.venv/bin/python benchmarks/widgets.py [--clicks 30] [--models shapes,shapes_vit,vgg16] [--segment-clicks 30]``
(``--models= --segment-clicks 30``: the segment case alone).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
from _common import OwnSeconds, in_turn, report  # noqa: E402
from _jupyter import CHROMIUM, CHROMIUM_ARGS, open_notebook, serve_lab  # noqa: E402

SETUP = """
import json, tempfile, time
import numpy as np, torch
import conceptscope as cs
from conceptscope.widgets import explore
"""
MODELS = {
    "shapes": """
from conceptscope.atlas import Atlas
world = cs.load_world("shapes")
xp = cs.Explainer(world.model)
data = world.dataset("test", n=64)
atlas = Atlas.build(xp, data, ["features.15", "features.11"], tempfile.mkdtemp() + "/atlas", k=16, progress=False)
x = data[3][0]
ex = explore(xp, x, atlas=atlas, picture=data.raw_image(3))
""",
    "shapes_vit": """
from conceptscope.atlas import Atlas
world = cs.load_world("shapes")
xp = cs.Explainer(world.vit, "attn_lrp")
data = world.dataset("test", n=64)
atlas = Atlas.build(xp, data, ["blocks.3", "blocks.2"], tempfile.mkdtemp() + "/atlas", k=16, progress=False)
x = data[3][0]
ex = explore(xp, x, atlas=atlas, picture=data.raw_image(3))
""",
    "vgg16": """
import torchvision
torch.manual_seed(0)
model = torchvision.models.vgg16(weights=None).eval()
xp = cs.Explainer(model)
x = torch.randn(3, 224, 224)
ex = explore(xp, x)
""",
}
# one conditional heatmap of the next listed concept, timed in the kernel (the explorer's caches untouched)
COMPUTE = """
if "compute_state" not in globals():
    compute_state = {"explanation": xp.explain(ex.controller.subject.image, ex.controller.subject.target),
                     "channels": [c["channel"] for c in ex.concepts.concepts], "calls": 0}
compute_state["calls"] += 1
start = time.perf_counter()
compute_state["explanation"].conditional_heatmaps(
    ex.concepts.layer, [compute_state["channels"][compute_state["calls"] % len(compute_state["channels"])]])
print(json.dumps(time.perf_counter() - start))
"""
# click a row and resolve when the heatmap canvas drew that concept, after the next frame
CLICK = """async (channel) => {
    const canvas = document.querySelector(".cs-heatmap canvas");
    const row = document.querySelector(`.cs-concepts li[data-channel="${channel}"]`);
    const label = `${row.dataset.layer} #${channel}`;
    const drawn = new Promise((resolve) => {
        const observer = new MutationObserver(() => {
            if (canvas.dataset.shown !== label) return;
            observer.disconnect();
            requestAnimationFrame(() => resolve(performance.now()));
        });
        observer.observe(canvas, { attributes: true, attributeFilter: ["data-shown", "data-frame"] });
    });
    const start = performance.now();
    row.click();
    return (await drawn) - start;
}"""


def clicker(page, kernel, uncached: bool):
    """A side for ``in_turn``: one click on the next concept row, its seconds as the page measured them."""
    channels = [int(c) for c in kernel.json("[c['channel'] for c in ex.concepts.concepts]")]
    clicks = itertools.count()

    def click():
        i = next(clicks)
        channel = channels[i % len(channels)]
        if page.locator(".cs-heatmap canvas").get_attribute("data-shown").endswith(f" #{channel}"):
            channel = channels[(i + 1) % len(channels)]
        if uncached:
            kernel.run("ex.controller.clear_cache()")
        seconds = page.evaluate(CLICK, channel) / 1000
        kernel.run("assert ex.wait(120)", timeout=180)
        return OwnSeconds(seconds)
    return click


SEGMENTER = """
from scipy import ndimage
from conceptscope.engine.segments import predicted_segments
from conceptscope.render import overlay, relevance_to_rgba
from conceptscope.world.segmentation import segment_classes
world = cs.load_world("shapes")
segmenter = world.load_model("segmenter")
xp = cs.Explainer(segmenter, classes=segment_classes(world), cache_size=0)  # every click computes its explanation
data = world.dataset("test", n=64)
def two_objects(i):
    with torch.no_grad():
        found = predicted_segments(segmenter(data[i][0][None])[0], (64, 64), xp.classes)
    return len(found) >= 2 and found[1].mask.sum() >= 30
index = next(i for i in range(len(data)) if two_objects(i))
ex = explore(xp, data[index][0], picture=data.raw_image(index), layer="backbone.fuse.0")
"""
# where to click on segments 0 and 1, and a probe pixel (away from the click markers) where their maps differ, with
# the colour each map gives it on the canvas
SEGMENT_PROBE = """
def _inside(mask):
    y, x = np.unravel_index(ndimage.distance_transform_edt(mask).argmax(), mask.shape)
    return int(x), int(y)
_segments = ex.controller.subject.segments[:2]
_clicks = [_inside(s.mask) for s in _segments]
_drawn = [overlay(ex.controller.subject.picture, relevance_to_rgba(xp.heatmap(ex.controller.subject.image,
          s.target).numpy(), ex.heatmap.colormap, alpha=True), ex.heatmap.opacity).astype(int) for s in _segments]
_differ = np.abs(_drawn[0] - _drawn[1]).max(-1)
for _x, _y in _clicks:
    _differ[max(0, _y - 3):_y + 4, max(0, _x - 3):_x + 4] = 0
_py, _px = np.unravel_index(_differ.argmax(), _differ.shape)
assert _differ[_py, _px] > 20, "the two segments' maps look alike everywhere"
print(json.dumps({"clicks": _clicks, "probe": [int(_px), int(_py)],
                  "colours": [d[_py, _px].tolist() for d in _drawn], "width": int(_differ.shape[1])}))
"""
SEGMENT_COMPUTE = """
if "segment_calls" not in globals():
    segment_calls = 0
segment_calls += 1
start = time.perf_counter()
xp.explain(ex.controller.subject.image, ex.controller.subject.segments[segment_calls % 2].target).heatmap
print(json.dumps(time.perf_counter() - start))
"""
# click the image pixel (x, y) and resolve when the probe pixel has the expected colour, after the next frame
SEGMENT_CLICK = """async ([x, y, probe, colour, width]) => {
    const canvas = document.querySelector(".cs-heatmap canvas");
    const ctx = canvas.getContext("2d");
    const scale = canvas.width / width;
    const probed = () => [...ctx.getImageData(Math.floor((probe[0] + 0.5) * scale),
                                              Math.floor((probe[1] + 0.5) * scale), 1, 1).data];
    const shown = () => {
        const d = probed();
        return d[3] === 255 && [0, 1, 2].every((i) => Math.abs(d[i] - colour[i]) <= 2);
    };
    if (shown()) throw new Error("the probe pixel already shows the clicked segment's map");
    const drawn = new Promise((resolve) => {
        const observer = new MutationObserver(() => {
            if (!shown()) return;
            observer.disconnect();
            requestAnimationFrame(() => resolve(performance.now()));
        });
        observer.observe(canvas, { attributes: true, attributeFilter: ["data-frame"] });
    });
    const rect = canvas.getBoundingClientRect();
    const at = { clientX: rect.left + (x + 0.5) * rect.width / width,
                 clientY: rect.top + (y + 0.5) * rect.height / width };
    const start = performance.now();
    canvas.dispatchEvent(new MouseEvent("click", { ...at, bubbles: true, button: 0 }));
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error("the clicked segment's map was not drawn "
        + `within 60 s: the probe pixel is ${probed()}, expected ${colour}`)), 60_000));
    return (await Promise.race([drawn, late])) - start;
}"""


def segment_case(browser, lab, clicks: int) -> None:
    """The segmenter: click on a segment -> its heatmap on screen, in turn with the kernel's compute of one."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    kernel = open_notebook(lab, page, "bench_segmenter.ipynb", [SETUP, SEGMENTER, "ex"],
                           ".cs-concepts li[data-channel]", timeout=600_000)
    try:
        kernel.run("assert ex.wait(600)", timeout=700)
        probe = json_of(kernel.run(SEGMENT_PROBE))

        def click():
            k = 1 - kernel.json("ex.controller.segment")  # the segment not shown now
            kernel.run("ex.controller.clear_cache()")
            x, y = probe["clicks"][k]
            seconds = page.evaluate(SEGMENT_CLICK, [x, y, probe["probe"], probe["colours"][k], probe["width"]]) / 1000
            kernel.run("assert ex.wait(120)", timeout=180)
            assert kernel.json("ex.controller.segment") == k
            return OwnSeconds(seconds)

        times = in_turn({"click": click, "compute": lambda: OwnSeconds(json_of(kernel.run(SEGMENT_COMPUTE)))}, clicks)
        click_times, compute = times["click"], times["compute"]
        rows = [{"model": "shapes segmenter", "input": "64x64", "layer": kernel.json("ex.concepts.layer"),
                 "condition": "uncached", "clicks": len(click_times.times), "p50_ms": click_times.median * 1000,
                 "p95_ms": percentile(click_times.times, 0.95) * 1000, "best_ms": click_times.best * 1000,
                 "compute_ms": compute.median * 1000, "compute best_ms": compute.best * 1000,
                 "p50/compute": click_times.median / compute.median}]
    finally:
        kernel.close()
        page.close()
    report("widgets_segment", rows, {"comm_mode": "perCommTarget", "browser": "chromium headless",
                                     "target": "p50 <= 300 ms"})


def json_of(output: str):
    return json.loads(output.strip().splitlines()[-1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--models", default="shapes,shapes_vit,vgg16")
    parser.add_argument("--segment-clicks", type=int, default=30, help="clicks of the segment case (0: skip it)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as base, serve_lab(Path(base), "perCommTarget") as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for name in filter(None, args.models.split(",")):
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            cells = [SETUP, MODELS[name], "ex"]
            kernel = open_notebook(lab, page, f"bench_{name}.ipynb", cells, ".cs-concepts li[data-channel]",
                                   timeout=600_000)
            try:
                kernel.run("assert ex.wait(600)", timeout=700)
                size = kernel.json("list(ex.controller.subject.picture.shape[:2])")
                layer = kernel.json("ex.concepts.layer")
                for condition, uncached in (("thumbnail cached", False), ("uncached", True)):
                    times = in_turn({"click": clicker(page, kernel, uncached),
                                     "compute": lambda: OwnSeconds(float(kernel.run(COMPUTE, timeout=600)))},
                                    args.clicks)
                    click, compute = times["click"], times["compute"]
                    rows.append({
                        "model": name, "input": f"{size[0]}x{size[1]}", "layer": layer, "condition": condition,
                        "clicks": len(click.times), "p50_ms": click.median * 1000,
                        "p95_ms": percentile(click.times, 0.95) * 1000, "best_ms": click.best * 1000,
                        "compute_ms": compute.median * 1000, "compute best_ms": compute.best * 1000,
                        "p50/compute": click.median / compute.median,
                    })
            finally:
                kernel.close()
                page.close()
        if args.segment_clicks:
            segment_case(browser, lab, args.segment_clicks)
        browser.close()
    if not rows:
        return
    report("widgets", rows, {"comm_mode": "perCommTarget", "browser": "chromium headless",
                             "targets": "shapes, shapes_vit p50 <= 150 ms; vgg16 p50 <= 1.5 x compute_ms"})


if __name__ == "__main__":
    main()
