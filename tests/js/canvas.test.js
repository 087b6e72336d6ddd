import { afterEach, describe, expect, it, vi } from "vitest";
import { byteLength, createDecoder, decodePng, drawComposite, outlineRgba } from "../../js/lib/canvas.js";
import { PANEL_GAP, panelLayout } from "../../js/lib/geometry.js";
import { formatRelevance } from "../../js/lib/format.js";
import { createRecordingContext } from "./fake_model.js";

afterEach(() => vi.unstubAllGlobals());

describe("decodePng", () => {
  it("wraps the buffer of a Bytes trait in a PNG blob for createImageBitmap", async () => {
    const seen = [];
    vi.stubGlobal("createImageBitmap", async (blob) => {
      seen.push(blob);
      return { width: 2, height: 1 };
    });
    const bytes = new DataView(new Uint8Array([137, 80, 78, 71]).buffer);
    await expect(decodePng(bytes)).resolves.toEqual({ width: 2, height: 1 });
    expect(seen[0].type).toBe("image/png");
    expect(new Uint8Array(await seen[0].arrayBuffer())).toEqual(new Uint8Array([137, 80, 78, 71]));
  });
  it("byteLength handles missing buffers", () => {
    expect(byteLength(undefined)).toBe(0);
    expect(byteLength(new DataView(new ArrayBuffer(3)))).toBe(3);
  });
});

describe("createDecoder", () => {
  const statusSpy = () => ({ errors: [], showError(message) { this.errors.push(message); } });

  it("shows only the latest decode, empty buffers as null", async () => {
    const release = [];
    vi.stubGlobal("createImageBitmap", (blob) => new Promise((resolve) => release.push(() => resolve({ blob }))));
    const status = statusSpy();
    const decode = createDecoder(status);
    const shown = [];
    const png = new DataView(new Uint8Array([1, 2]).buffer);
    const first = decode([png], (bitmaps) => shown.push(["first", bitmaps]));
    const second = decode([png, new DataView(new ArrayBuffer(0))], (bitmaps) => shown.push(["second", bitmaps]));
    release[1]();
    release[0]();
    await Promise.all([first, second]);
    expect(shown.map(([name]) => name)).toEqual(["second"]);
    expect(shown[0][1][1]).toBeNull();
    expect(status.errors).toEqual([]);
  });

  it("shows a failure of the latest decode as an error, and drops one of a stale decode", async () => {
    vi.stubGlobal("createImageBitmap", async () => {
      throw new Error("not a PNG");
    });
    const status = statusSpy();
    const decode = createDecoder(status);
    const png = new DataView(new Uint8Array([1]).buffer);
    const shown = [];
    await decode([png], () => shown.push("bad"));
    expect(shown).toEqual([]);
    expect(status.errors).toEqual(["could not decode the image: not a PNG"]);
    const stale = decode([png], () => shown.push("stale"));
    vi.stubGlobal("createImageBitmap", async () => ({ width: 1, height: 1 }));
    await Promise.all([stale, decode([png], () => shown.push("latest"))]);
    expect(shown).toEqual(["latest"]);
    expect(status.errors).toHaveLength(1);
  });
});

describe("drawComposite", () => {
  const image = { width: 64, height: 32, name: "image" };
  const heatmap = { width: 64, height: 32, name: "heatmap" };

  it("draws the image, then the heatmap at the given opacity, scaled without smoothing", () => {
    const ctx = createRecordingContext();
    drawComposite(ctx, { image, heatmap, opacity: 0.4, scale: 4, marker: null });
    expect(ctx.calls).toEqual([
      ["set imageSmoothingEnabled", false],
      ["set globalAlpha", 1],
      ["clearRect", 0, 0, 256, 128],
      ["drawImage", image, 0, 0, 256, 128],
      ["set globalAlpha", 0.4],
      ["drawImage", heatmap, 0, 0, 256, 128],
      ["set globalAlpha", 1],
    ]);
  });
  it("draws a marker box centred on the chosen pixel", () => {
    const ctx = createRecordingContext();
    drawComposite(ctx, { image, heatmap, opacity: 0.5, scale: 4, marker: { x: 10, y: 3 } });
    const boxes = ctx.calls.filter(([name]) => name === "strokeRect");
    expect(boxes).toHaveLength(2);
    const [, left, top, w, h] = boxes[0];
    expect(left + w / 2).toBe(10.5 * 4);
    expect(top + h / 2).toBe(3.5 * 4);
    expect(w).toBeGreaterThan(4);
  });
});

describe("formatRelevance", () => {
  it("shows 4 significant digits without trailing zeros", () => {
    expect(formatRelevance(0.0123)).toBe("0.0123");
    expect(formatRelevance(-0.318636894)).toBe("-0.3186");
    expect(formatRelevance(12345.6)).toBe("12350");
    expect(formatRelevance(1.23456e-7)).toBe("1.235e-7");
    expect(formatRelevance(0)).toBe("0");
  });
});

describe("the contour display", () => {
  // A 5 x 5 relevance map, by hand: the 9 largest values (>= 5) form the 3 x 3 block at rows 1-3, columns 1-3, so its
  // top 36 % (ceil(0.36 * 25) = 9 pixels, render.contour.top_mask; tests/test_widgets_heatmap.py checks the same
  // array there) is that block; its outline is the block without its centre (2, 2).
  const RELEVANCE = [
    [0, 1, -2, 1, 0],
    [1, 7, 9, 8, -1],
    [0, 6, 9, 7, 2],
    [-3, 5, 8, 6, 1],
    [0, 1, 2, 0, -4],
  ];
  const RED = [127, 0, 0];
  const maskRgba = (mask) => {
    const out = new Uint8ClampedArray(mask.length * mask[0].length * 4);
    mask.flat().forEach((on, i) => on && out.set([...RED, 255], i * 4));
    return out;
  };
  const alphaOf = (rgba, width) =>
    Array.from({ length: rgba.length / 4 / width }, (_, y) =>
      Array.from({ length: width }, (_, x) => rgba[(y * width + x) * 4 + 3]));

  it("outlines the inner boundary of the top-k % set in the mask's colour, the rest transparent", () => {
    const mask = RELEVANCE.map((row) => row.map((v) => (v >= 5 ? 1 : 0)));
    expect(mask.flat().reduce((a, b) => a + b)).toBe(9);
    const out = outlineRgba(maskRgba(mask), 5, 5);
    expect(alphaOf(out, 5)).toEqual([
      [0, 0, 0, 0, 0],
      [0, 255, 255, 255, 0],
      [0, 255, 0, 255, 0],
      [0, 255, 255, 255, 0],
      [0, 0, 0, 0, 0],
    ]);
    expect([...out.slice((1 * 5 + 2) * 4, (1 * 5 + 2) * 4 + 4)]).toEqual([...RED, 255]);
    expect([...out.slice((2 * 5 + 2) * 4, (2 * 5 + 2) * 4 + 4)]).toEqual([0, 0, 0, 0]);
  });

  it("counts the image's edge as outside: a set filling the first rows is outlined along the edge too", () => {
    const mask = [[1, 1, 1], [1, 1, 1], [0, 0, 0]];
    expect(alphaOf(outlineRgba(maskRgba(mask), 3, 3), 3)).toEqual([[255, 255, 255], [255, 255, 255], [0, 0, 0]]);
    const full = [[1, 1, 1], [1, 1, 1], [1, 1, 1]];
    expect(alphaOf(outlineRgba(maskRgba(full), 3, 3), 3)).toEqual([[255, 255, 255], [255, 0, 255], [255, 255, 255]]);
    expect(alphaOf(outlineRgba(new Uint8ClampedArray(36), 3, 3), 3).flat().every((a) => a === 0)).toBe(true);
  });

  it("draws the image and the outline over it, not the heatmap", () => {
    const ctx = createRecordingContext();
    const image = { width: 8, height: 4 };
    const outline = { name: "outline" };
    drawComposite(ctx, { image, heatmap: { name: "heatmap" }, opacity: 0.5, scale: 2, marker: null, mode: "contour", outline });
    expect(ctx.calls.filter(([name]) => name === "drawImage")).toEqual([
      ["drawImage", image, 0, 0, 16, 8],
      ["drawImage", outline, 0, 0, 16, 8],
    ]);
  });
});

describe("the side-by-side display", () => {
  it("draws the image in the first panel and the heatmap on white in the second, a marker in each", () => {
    const ctx = createRecordingContext();
    const image = { width: 8, height: 4 };
    const heatmap = { name: "heatmap" };
    const layout = panelLayout(8, 4, 2, 2);
    expect(layout.offsets).toEqual([0, 16 + PANEL_GAP]);
    drawComposite(ctx, { image, heatmap, opacity: 0.5, scale: 2, marker: { x: 1, y: 1 }, mode: "side-by-side", layout });
    expect(ctx.calls).toContainEqual(["clearRect", 0, 0, 32 + PANEL_GAP, 8]);
    expect(ctx.calls.filter(([name]) => name === "drawImage")).toEqual([
      ["drawImage", image, 0, 0, 16, 8],
      ["drawImage", heatmap, 16 + PANEL_GAP, 0, 16, 8],
    ]);
    expect(ctx.calls).toContainEqual(["fillRect", 16 + PANEL_GAP, 0, 16, 8]);
    expect(ctx.calls).not.toContainEqual(["set globalAlpha", 0.5]);
    const lefts = ctx.calls.filter(([name]) => name === "strokeRect").map(([, left]) => left);
    expect(lefts.length).toBe(4);
    expect(lefts[2] - lefts[0]).toBe(16 + PANEL_GAP);
  });
});
