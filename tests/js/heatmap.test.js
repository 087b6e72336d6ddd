import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import view, { colorbarText } from "../../js/heatmap.js";
import { createFakeModel, createRecordingContext } from "./fake_model.js";

const png = (tag) => new DataView(new Uint8Array([137, 80, 78, 71, tag]).buffer);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

let ctx;
let decoded;

beforeEach(() => {
  ctx = createRecordingContext();
  decoded = [];
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(ctx);
  vi.stubGlobal("createImageBitmap", async (blob) => {
    const tag = new Uint8Array(await blob.arrayBuffer())[4];
    if (tag === 0) throw new Error("broken PNG");
    decoded.push(tag);
    return { width: 64, height: 64, tag };
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

async function setup(overrides = {}) {
  const model = createFakeModel({
    image_png: png(1),
    heatmap_png: png(2),
    colormap: "bwr",
    colormaps: ["bwr", "seismic"],
    opacity: 0.6,
    ...overrides,
  });
  const el = document.createElement("div");
  const cleanup = view.render({ model, el });
  const canvas = el.querySelector("canvas");
  // the canvas sits at (8, 16) on the page, shown at 4x: 256 x 256 CSS px
  canvas.getBoundingClientRect = () => ({ left: 8, top: 16, width: 256, height: 256 });
  await flush();
  const q = (sel) => el.querySelector(sel);
  const clickPixel = (x, y) =>
    canvas.dispatchEvent(new MouseEvent("click", { clientX: 8 + 4 * x + 2, clientY: 16 + 4 * y + 1 }));
  return { model, el, canvas, cleanup, q, clickPixel };
}

describe("HeatmapView front end", () => {
  it("decodes both PNG buffers and draws them scaled up on the canvas", async () => {
    const { canvas, q } = await setup();
    expect(decoded).toEqual([1, 2]);
    expect([canvas.width, canvas.height]).toEqual([256, 256]);
    expect(canvas.dataset.frame).toBe("1");
    const draws = ctx.calls.filter(([name]) => name === "drawImage").map(([, img]) => img.tag);
    expect(draws).toEqual([1, 2]);
    expect(ctx.calls).toContainEqual(["set globalAlpha", 0.6]);
    expect([...q("select").options].map((o) => o.value)).toEqual(["bwr", "seismic"]);
    expect(q("select").value).toBe("bwr");
    expect(q(".cs-error").hidden).toBe(true);
  });

  it("sends a pixel request with image coordinates on click and shows busy", async () => {
    const { model, el, clickPixel } = await setup();
    clickPixel(5, 9);
    expect(model.sent).toHaveLength(1);
    expect(model.sent[0]).toMatchObject({ type: "pixel", x: 5, y: 9 });
    expect(typeof model.sent[0].id).toBe("string");
    expect(el.querySelector(".cs-heatmap").dataset.busy).toBe("true");
    expect(el.querySelector(".cs-status").textContent).toContain("(5, 9)");
  });

  it("shows the value of the reply and redraws with a marker", async () => {
    const { model, canvas, q, clickPixel } = await setup();
    clickPixel(5, 9);
    ctx.calls.length = 0;
    model.receive({ type: "pixel_result", id: model.sent[0].id, x: 5, y: 9, value: 0.012345678 });
    expect(q(".cs-status").textContent).toBe("relevance at (5, 9): 0.01235");
    expect(q(".cs-status").dataset.value).toBe("0.012345678");
    expect(q(".cs-heatmap").dataset.busy).toBe("false");
    expect(canvas.dataset.frame).toBe("2");
    expect(ctx.calls.filter(([name]) => name === "strokeRect")).toHaveLength(2);
  });

  it("drops stale replies: only the latest request's reply is shown", async () => {
    const { model, canvas, q, clickPixel } = await setup();
    clickPixel(1, 1);
    clickPixel(2, 2);
    const [first, second] = model.sent;
    model.receive({ type: "pixel_result", id: first.id, x: 1, y: 1, value: 1 });
    expect(q(".cs-status").textContent).not.toContain("relevance at (1, 1)");
    expect(canvas.dataset.frame).toBe("1");
    model.receive({ type: "pixel_result", id: second.id, x: 2, y: 2, value: 2 });
    expect(q(".cs-status").textContent).toBe("relevance at (2, 2): 2");
    model.receive({ type: "error", id: first.id, message: "late" });
    expect(q(".cs-error").hidden).toBe(true);
  });

  it("shows errors in a visible line and keeps working", async () => {
    const { model, q, clickPixel } = await setup();
    clickPixel(3, 3);
    model.receive({ type: "error", id: model.sent[0].id, message: "ZeroDivisionError: division by zero" });
    expect(q(".cs-error").hidden).toBe(false);
    expect(q(".cs-error").textContent).toBe("Error: ZeroDivisionError: division by zero");
    expect(q(".cs-error").getAttribute("role")).toBe("alert");
    clickPixel(4, 4);
    model.receive({ type: "pixel_result", id: model.sent[1].id, x: 4, y: 4, value: -0.5 });
    expect(q(".cs-error").hidden).toBe(true);
    expect(q(".cs-status").textContent).toBe("relevance at (4, 4): -0.5");
  });

  it("ignores clicks outside the image", async () => {
    const { model, canvas } = await setup();
    canvas.dispatchEvent(new MouseEvent("click", { clientX: 8 + 256, clientY: 20 }));
    expect(model.sent).toHaveLength(0);
  });

  it("syncs opacity and colormap both ways", async () => {
    const { model, canvas, q } = await setup();
    const slider = q("input[type=range]");
    expect(slider.value).toBe("0.6");
    slider.value = "0.25";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("opacity")).toBe(0.25);
    expect(model.saved).toBe(1);
    expect(ctx.calls).toContainEqual(["set globalAlpha", 0.25]);
    expect(canvas.dataset.frame).toBe("2");

    model.set("opacity", 0.9); // from Python
    expect(slider.value).toBe("0.9");
    expect(canvas.dataset.frame).toBe("3");

    const select = q("select");
    select.value = "seismic";
    select.dispatchEvent(new Event("change"));
    expect(model.get("colormap")).toBe("seismic");
    expect(model.saved).toBe(2);
    model.set("colormap", "bwr"); // from Python
    expect(select.value).toBe("bwr");
  });

  it("redraws on a new heatmap and refreshes the value under the marker", async () => {
    const { model, canvas, clickPixel } = await setup();
    clickPixel(7, 8);
    model.receive({ type: "pixel_result", id: model.sent[0].id, x: 7, y: 8, value: 1 });
    model.set("heatmap_png", png(3));
    await flush();
    expect(decoded.at(-1)).toBe(3);
    expect(canvas.dataset.frame).toBe("3");
    expect(model.sent[1]).toMatchObject({ type: "pixel", x: 7, y: 8 });
    expect(model.sent[1].id).not.toBe(model.sent[0].id);
  });

  it("shows a decoding failure as an error", async () => {
    const { q } = await setup({ heatmap_png: png(0) });
    expect(q(".cs-error").hidden).toBe(false);
    expect(q(".cs-error").textContent).toContain("broken PNG");
  });

  it("removes its model listeners on cleanup", async () => {
    const { model, cleanup } = await setup();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("HeatmapView regions and concept maps", () => {
  const drag = (canvas, from, to) => {
    const at = ({ x, y }) => ({ clientX: 8 + 4 * x + 2, clientY: 16 + 4 * y + 2, button: 0 });
    canvas.dispatchEvent(new MouseEvent("mousedown", at(from)));
    window.dispatchEvent(new MouseEvent("mousemove", at(to)));
    window.dispatchEvent(new MouseEvent("mouseup", at(to)));
    canvas.dispatchEvent(new MouseEvent("click", at(to))); // what the browser sends after the mouseup
  };

  it("a drag sends a region request (end exclusive) and no pixel request", async () => {
    const { model, canvas } = await setup({ region: [] });
    drag(canvas, { x: 10, y: 4 }, { x: 2, y: 20 });
    expect(model.sent).toEqual([{ type: "region", id: model.sent[0].id, box: [2, 4, 11, 21] }]);
    expect(ctx.calls.filter(([name]) => name === "setLineDash")).toContainEqual(["setLineDash", [4, 3]]);
  });

  it("a press without movement stays a pixel click", async () => {
    const { model, canvas } = await setup({ region: [] });
    drag(canvas, { x: 5, y: 5 }, { x: 5, y: 5 });
    expect(model.sent.map((m) => m.type)).toEqual(["pixel"]);
  });

  it("draws the region from Python and offers to clear it", async () => {
    const { model, q } = await setup({ region: [] });
    expect(q(".cs-clear-region").hidden).toBe(true);
    ctx.calls.length = 0;
    model.set("region", [1, 2, 5, 6]);
    expect(ctx.calls).toContainEqual(["strokeRect", 4.5, 8.5, 15, 15]);
    expect(q(".cs-clear-region").hidden).toBe(false);
    q(".cs-clear-region").click();
    expect(model.sent.at(-1)).toMatchObject({ type: "region", box: [] });
  });

  it("shows the concept's map with its own label and toggles back to the heatmap", async () => {
    const { model, canvas, q } = await setup({ concept_png: png(4), concept_label: "f.15 #3", show: "concept" });
    expect(canvas.dataset.shown).toBe("f.15 #3");
    expect(ctx.calls.filter(([name]) => name === "drawImage").at(-1)[1].tag).toBe(4);
    expect(q(".cs-caption").textContent).toBe("concept f.15 #3");
    expect(q(".cs-show-concept").getAttribute("aria-pressed")).toBe("true");
    q(".cs-show-heatmap").click();
    expect(model.get("show")).toBe("heatmap");
    expect(canvas.dataset.shown).toBe("heatmap");
    expect(ctx.calls.filter(([name]) => name === "drawImage").at(-1)[1].tag).toBe(2);
  });

  it("keeps showing the old concept's label until the new concept's map is decoded", async () => {
    const { model, canvas } = await setup({ concept_png: png(4), concept_label: "f.15 #3", show: "concept" });
    model.set("concept_label", "f.15 #9");
    model.set("concept_png", png(5));
    expect(canvas.dataset.shown).toBe("f.15 #3");
    await flush();
    expect(canvas.dataset.shown).toBe("f.15 #9");
    expect(ctx.calls.filter(([name]) => name === "drawImage").at(-1)[1].tag).toBe(5);
  });

  it("disables the concept toggle while there is no concept map", async () => {
    const { q } = await setup({ concept_png: new DataView(new ArrayBuffer(0)), show: "heatmap" });
    expect(q(".cs-show-concept").disabled).toBe(true);
  });

  it("is busy while Python works for it and shows Python's errors", async () => {
    const { model, q } = await setup();
    model.set("busy", true);
    expect(q(".cs-heatmap").dataset.busy).toBe("true");
    model.set("busy", false);
    model.set("error", "RuntimeError: boom");
    expect(q(".cs-error").textContent).toBe("Error: RuntimeError: boom");
    model.set("error", "");
    expect(q(".cs-error").hidden).toBe(true);
  });

  it("shows a colour bar with the shown map's scale and its share of the logit", async () => {
    const { model, q } = await setup({
      colorbar_png: png(3),
      scales: { heatmap: { max: 0.5, sum: 3 }, concept: { max: 0.25, sum: 1 } },
      logit: 6,
    });
    expect(q(".cs-colorbar img").src).toMatch(/^blob:/);
    const ticks = () => [...q(".cs-colorbar .cs-ticks").children].map((t) => t.textContent);
    expect(ticks()).toEqual(["−0.5", "0", "+0.5"]);
    expect(q(".cs-colorbar .cs-summary").textContent).toBe("ΣR 3 = 50.0 % of the logit 6");
    model.set("concept_png", png(4));
    model.set("concept_label", "features.15 #3");
    model.set("show", "concept");
    await flush();
    await flush();
    expect(ticks()).toEqual(["−0.25", "0", "+0.25"]);
    expect(q(".cs-colorbar .cs-summary").textContent).toBe("ΣR 1");
  });

  it("words the colour bar", () => {
    expect(colorbarText({ max: 2, sum: -1 }, null)).toEqual({ ticks: ["−2", "0", "+2"], summary: "ΣR -1" });
    expect(colorbarText(undefined, 3)).toEqual({ ticks: ["", "0", ""], summary: "" });
  });
});

describe("the displays of the heatmap", () => {
  it("switches the display from its control, and draws side by side on a wider canvas whose panels both click", async () => {
    const { model, canvas, q } = await setup({ overlays: ["overlay", "side-by-side", "contour"], overlay: "overlay" });
    const select = q(".cs-overlay");
    expect([...select.options].map((o) => o.textContent)).toEqual(["overlay", "side by side", "contour"]);
    select.value = "side-by-side";
    select.dispatchEvent(new Event("change"));
    expect(model.get("overlay")).toBe("side-by-side");
    expect(model.saved).toBe(1);
    expect([canvas.width, canvas.height]).toEqual([512 + 4, 256]);
    expect(canvas.dataset.overlay).toBe("side-by-side");
    // the canvas is shown at its size: a click 2 px into pixel (5, 9) of the right panel asks for (5, 9)
    canvas.getBoundingClientRect = () => ({ left: 8, top: 16, width: 516, height: 256 });
    canvas.dispatchEvent(new MouseEvent("click", { clientX: 8 + 260 + 4 * 5 + 2, clientY: 16 + 4 * 9 + 1 }));
    expect(model.sent.at(-1)).toMatchObject({ type: "pixel", x: 5, y: 9 });
  });

  it("draws the outline of the contour PNG in the contour display and says what it marks", async () => {
    const pixels = new Uint8ClampedArray(64 * 64 * 4);
    pixels.set([255, 0, 0, 255], (10 * 64 + 10) * 4); // one masked pixel: its own outline
    ctx.getImageData = () => ({ data: pixels });
    const { q, canvas } = await setup({ contour_png: png(3), overlay: "contour", contour_percent: 10 });
    expect(decoded).toEqual([1, 2, 3]);
    expect(canvas.dataset.overlay).toBe("contour");
    expect(q(".cs-caption").textContent).toBe("relevance of the target; outline: top 10 % of pixels by positive relevance");
    const put = ctx.calls.filter(([name]) => name === "putImageData");
    expect(put).toHaveLength(1);
    expect([...put[0][1].data.slice((10 * 64 + 10) * 4, (10 * 64 + 10) * 4 + 4)]).toEqual([255, 0, 0, 255]);
    const draws = ctx.calls.filter(([name]) => name === "drawImage").map(([, img]) => img.tag ?? img.tagName);
    expect(draws).toEqual([3, 1, "CANVAS"]); // the contour onto its canvas, then the image and the outline canvas
  });
});

describe("kernel updates", () => {
  it("decodes a map and its contour once when an update changes both", async () => {
    const { model } = await setup({ contour_png: png(3) });
    decoded.length = 0;
    model.update({ heatmap_png: png(4), contour_png: png(5) });
    await flush();
    expect(decoded).toEqual([1, 4, 5]);
  });
});
