import { afterEach, describe, expect, it, vi } from "vitest";
import { byteLength, createDecoder, decodePng, drawComposite } from "../../js/lib/canvas.js";
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
