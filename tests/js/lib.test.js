import { afterEach, describe, expect, it, vi } from "vitest";
import { drawRegion } from "../../js/lib/canvas.js";
import { createChannel } from "../../js/lib/channel.js";
import { conceptLabel, formatShare } from "../../js/lib/format.js";
import { boxFromPixels } from "../../js/lib/geometry.js";
import { createUrlPool } from "../../js/lib/images.js";
import { listen } from "../../js/lib/listen.js";
import { coalesce } from "../../js/lib/schedule.js";
import { BUSY_DELAY, createStatus } from "../../js/lib/status.js";
import { createFakeModel, createRecordingContext } from "./fake_model.js";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("createStatus", () => {
  it("marks busy at once but shows the spinner only after the delay", () => {
    vi.useFakeTimers();
    const parent = document.createElement("div");
    const status = createStatus(parent);
    status.busy(true);
    expect(parent.dataset.busy).toBe("true");
    expect(status.spinner.hidden).toBe(true);
    vi.advanceTimersByTime(BUSY_DELAY - 1);
    expect(status.spinner.hidden).toBe(true);
    vi.advanceTimersByTime(1);
    expect(status.spinner.hidden).toBe(false);
    status.busy(false);
    expect(status.spinner.hidden).toBe(true);
    expect(parent.dataset.busy).toBe("false");
  });
  it("never shows the spinner for work that ends before the delay", () => {
    vi.useFakeTimers();
    const status = createStatus(document.createElement("div"));
    status.busy(true);
    vi.advanceTimersByTime(100);
    status.busy(false);
    vi.advanceTimersByTime(1000);
    expect(status.spinner.hidden).toBe(true);
  });
});

describe("createChannel", () => {
  const setup = (state = {}) => {
    const model = createFakeModel({ busy: false, error: "", ...state });
    const parent = document.createElement("div");
    const status = createStatus(parent);
    return { model, parent, status, channel: createChannel(model, status) };
  };

  it("sends requests with ids and accepts only the latest reply of each kind", () => {
    const { model, parent, channel } = setup();
    const a = channel.request("select", { channel: 1 });
    const b = channel.request("select", { channel: 2 });
    const c = channel.request("layer", { layer: "x" });
    expect(model.sent).toEqual([
      { type: "select", id: a, channel: 1 },
      { type: "select", id: b, channel: 2 },
      { type: "layer", id: c, layer: "x" },
    ]);
    expect(parent.dataset.busy).toBe("true");
    expect(channel.accept({ type: "selected", id: a })).toBe(false);
    expect(channel.accept({ type: "selected", id: b })).toBe(true);
    expect(parent.dataset.busy).toBe("true"); // the layer request is still pending
    expect(channel.accept({ type: "done", id: c })).toBe(true);
    expect(parent.dataset.busy).toBe("false");
    expect(channel.accept({ type: "done", id: "someone-else:1" })).toBe(false);
  });
  it("is busy while the model says so (work started by another view)", () => {
    const { model, parent } = setup();
    model.set("busy", true);
    expect(parent.dataset.busy).toBe("true");
    model.set("busy", false);
    expect(parent.dataset.busy).toBe("false");
  });
  it("shows error replies and the error trait, and clears them on success", () => {
    const { model, status, channel } = setup({ error: "RuntimeError: boom" });
    expect(status.error.hidden).toBe(false);
    expect(status.error.textContent).toBe("Error: RuntimeError: boom");
    model.set("error", "");
    expect(status.error.hidden).toBe(true);
    const id = channel.request("select");
    channel.accept({ type: "error", id, message: "bad channel" });
    expect(status.error.textContent).toBe("Error: bad channel");
    channel.accept({ type: "selected", id: channel.request("select") });
    expect(status.error.hidden).toBe(true);
  });
  it("removes its listeners on dispose", () => {
    const { model, channel } = setup();
    channel.dispose();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("small helpers", () => {
  it("formats shares and concept names", () => {
    expect(formatShare(0.1234)).toBe("12.3 %");
    expect(formatShare(null)).toBe("–");
    expect(formatShare(Number.NaN)).toBe("–");
    expect(conceptLabel("features.15", 3)).toBe("features.15 #3");
  });
  it("spans a box over two pixels in either order, end exclusive", () => {
    expect(boxFromPixels({ x: 5, y: 2 }, { x: 1, y: 9 })).toEqual([1, 2, 6, 10]);
    expect(boxFromPixels({ x: 3, y: 3 }, { x: 3, y: 3 })).toEqual([3, 3, 4, 4]);
  });
  it("draws a region as a dashed box around its pixels", () => {
    const ctx = createRecordingContext();
    drawRegion(ctx, [1, 2, 5, 6], 4);
    const boxes = ctx.calls.filter(([name]) => name === "strokeRect");
    expect(boxes).toEqual([
      ["strokeRect", 4.5, 8.5, 15, 15],
      ["strokeRect", 4.5, 8.5, 15, 15],
    ]);
    expect(ctx.calls).toContainEqual(["setLineDash", [4, 3]]);
  });
  it("makes and revokes object URLs for PNG bytes", () => {
    const revoke = vi.spyOn(URL, "revokeObjectURL");
    const pool = createUrlPool();
    const url = pool.url(new DataView(new Uint8Array([1, 2]).buffer));
    expect(url).toMatch(/^blob:/);
    pool.release();
    expect(revoke).toHaveBeenCalledWith(url);
  });
  it("coalesces calls into one run per microtask", async () => {
    const fn = vi.fn();
    const run = coalesce(fn);
    run();
    run();
    run();
    expect(fn).not.toHaveBeenCalled();
    await Promise.resolve();
    expect(fn).toHaveBeenCalledTimes(1);
    run();
    await Promise.resolve();
    expect(fn).toHaveBeenCalledTimes(2);
  });
});

describe("listen", () => {
  it("attaches model and DOM listeners and detaches them all with one call", () => {
    const model = createFakeModel({ x: 1 });
    const button = document.createElement("button");
    const seen = [];
    const unlisten = listen(model, [["change:x", () => seen.push("x")], ["msg:custom", (msg) => seen.push(msg.type)]],
      [[button, "click", () => seen.push("click")]]);
    model.set("x", 2);
    model.receive({ type: "done" });
    button.click();
    expect(seen).toEqual(["x", "done", "click"]);
    expect(model.listenerCount()).toBe(2);
    unlisten();
    model.set("x", 3);
    model.receive({ type: "done" });
    button.click();
    expect(seen).toHaveLength(3);
    expect(model.listenerCount()).toBe(0);
  });
});

describe("view scale", () => {
  it("zooms the view by the scale trait and follows its changes", () => {
    const model = createFakeModel({ busy: false, error: "", scale: 1.5 });
    const root = document.createElement("div");
    const channel = createChannel(model, createStatus(root));
    expect(root.style.zoom).toBe("1.5");
    model.set("scale", 1);
    expect(root.style.zoom).toBe("");
    channel.dispose();
  });
});
