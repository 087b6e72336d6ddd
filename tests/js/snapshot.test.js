import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NO_KERNEL, createStaticModel, decodeState } from "../../js/lib/static_model.js";
import { VIEWS, mount } from "../../js/snapshot.js";
import { createRecordingContext } from "./fake_model.js";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const b64 = (bytes) => btoa(String.fromCharCode(...bytes));

describe("decodeState", () => {
  it("turns saved bytes into DataViews, recursively", () => {
    const state = decodeState({ png: { $bytes: b64([137, 80]) }, list: [{ thumb: { $bytes: b64([1, 2, 3]) } }], n: 1 });
    expect(state.png).toBeInstanceOf(DataView);
    expect([...new Uint8Array(state.png.buffer)]).toEqual([137, 80]);
    expect([...new Uint8Array(state.list[0].thumb.buffer)]).toEqual([1, 2, 3]);
    expect(state.n).toBe(1);
  });
});

describe("createStaticModel", () => {
  it("keeps local changes and answers every request with a no-kernel error", async () => {
    const model = createStaticModel({ show: "heatmap" });
    const seen = [];
    model.on("change:show", () => seen.push(model.get("show")));
    model.on("msg:custom", (msg) => seen.push(msg));
    model.set("show", "concept");
    model.save_changes();
    model.send({ type: "select", id: "v:1" });
    await flush();
    expect(seen).toEqual(["concept", { type: "error", id: "v:1", message: NO_KERNEL }]);
  });
});

describe("mount", () => {
  beforeEach(() => {
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(createRecordingContext());
    vi.stubGlobal("createImageBitmap", async () => ({ width: 8, height: 8 }));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  it("renders boxes of views with the same view modules", async () => {
    const png = { $bytes: b64([137, 80, 78, 71]) };
    const root = document.createElement("div");
    mount(root, {
      box: "column",
      children: [
        { view: "target", state: { classes: ["a", "b"], predictions: [{ index: 0, name: "a", probability: 1 }], target: 0, predicted: 0 } },
        {
          box: "row",
          children: [
            {
              view: "heatmap",
              state: { image_png: png, heatmap_png: png, concept_png: png, concept_label: "f #1", show: "concept",
                region: [], colormap: "bwr", colormaps: ["bwr"], opacity: 0.5 },
            },
          ],
        },
      ],
    });
    await flush();
    await flush();
    expect(root.querySelector(".cs-column > .cs-row")).not.toBeNull();
    expect(root.querySelectorAll(".cs-target .cs-class")).toHaveLength(1);
    expect(root.querySelector(".cs-heatmap canvas").dataset.shown).toBe("f #1");
    expect(Object.keys(VIEWS).sort()).toEqual(["concepts", "gallery", "heatmap", "semantic_search", "target", "tree"]);
    expect(() => mount(root, { view: "nope", state: {} })).toThrow("unknown view nope");
  });
});
