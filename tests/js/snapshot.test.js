import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NOT_PRECOMPUTED, createSession, createStaticModel, decodeState, fieldsJson } from "../../js/lib/static_model.js";
import { VIEWS, mount, mountPage } from "../../js/snapshot.js";
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
  it("keeps the view's own changes, undoes the others, and says that nothing was precomputed", async () => {
    const model = createStaticModel({ show: "heatmap", colormap: "bwr", error: "" }, { local: ["show"] });
    const seen = [];
    model.on("change:show", () => seen.push(model.get("show")));
    model.on("msg:custom", (msg) => seen.push(msg));
    model.set("show", "concept");
    model.set("colormap", "seismic"); // recolouring needs Python
    model.save_changes();
    expect(model.get("show")).toBe("concept");
    expect(model.get("colormap")).toBe("bwr");
    expect(model.get("error")).toBe(`colormap: ${NOT_PRECOMPUTED}`);
    model.send({ type: "select", id: "v:1" });
    await flush();
    expect(seen).toEqual(["concept", { type: "error", id: "v:1", message: NOT_PRECOMPUTED }]);
    seen.length = 0;
    model.send({ type: "show", id: "v:2", show: "heatmap" }); // a refused request naming a trait: it is shown again
    await flush();
    expect(seen).toEqual([{ type: "error", id: "v:2", message: NOT_PRECOMPUTED }, "concept"]);
    expect(NOT_PRECOMPUTED).toContain("save_html(..., precompute=...)");
  });
});

describe("createSession", () => {
  // two views (ids 0 and 1); state 0 shows class a, state 1 class b with concept 3 selected
  const precomputed = {
    start: 0,
    requests: ['0|target|{"target":1}', '1|select|{"channel":3,"layer":"f"}'],
    replies: [{ type: "target_set", target: 1 }, { type: "selected", layer: "f", channel: 3 }],
    views: [{ target: 0 }, { target: 1 }, { label: 2, png: 4 }, { label: 3, png: 5 }],
    states: [[0, 2], [1, 3], [1, 2]],
    next: [{ 0: 2 }, { 0: 1 }, { 0: 2, 1: 1 }],
  };
  const values = [0, 1, "none", "f #3", { $bytes: b64([1]) }, { $bytes: b64([2]) }];

  it("writes a request's fields as Python's canonical JSON", () => {
    expect(fieldsJson({ path: [["f", 3]], b: { z: 1, a: "ü" } })).toBe('{"b":{"a":"ü","z":1},"path":[["f",3]]}');
  });

  it("applies the next state's differing traits to every view at once, then replies as the kernel did", async () => {
    const session = createSession(precomputed, values);
    const target = createStaticModel({ target: 0 }, { session, id: 0 });
    const concept = createStaticModel({ label: "none", png: session.value(4) }, { session, id: 1 });
    session.attach(0, target, { target: 0 });
    session.attach(1, concept, { label: 2, png: 4 });
    const seen = [];
    concept.on("change:label", () => seen.push(["label", concept.get("label"), concept.get("png")]));
    concept.on("change:png", () => seen.push(["png"]));
    target.on("change:target", () => seen.push(["target", target.get("target")]));
    target.on("msg:custom", (msg) => seen.push(msg));
    concept.on("msg:custom", (msg) => seen.push(msg));
    concept.send({ type: "select", id: "c:1", layer: "f", channel: 3 }); // not from state 0
    target.send({ type: "target", id: "t:1", target: 1 }); // state 0 -> 2
    await flush();
    expect(seen).toEqual([
      ["target", 1],
      { type: "error", id: "c:1", message: NOT_PRECOMPUTED },
      { type: "target_set", target: 1, id: "t:1" },
    ]);
    seen.length = 0;
    concept.send({ channel: 3, layer: "f", type: "select", id: "c:2" }); // state 2 -> 1: label and png change together
    await flush();
    expect(seen[0]).toEqual(["label", "f #3", session.value(5)]);
    expect(seen[1]).toEqual(["png"]);
    expect(seen[2]).toEqual({ type: "selected", layer: "f", channel: 3, id: "c:2" });
    expect([...new Uint8Array(concept.get("png").buffer)]).toEqual([2]);
    expect(session.value(5)).toBe(session.value(5)); // decoded once
  });

  it("sets again a trait the view changed itself when the next state shows it differently", () => {
    const session = createSession(precomputed, values);
    const concept = createStaticModel({ label: "none" }, { session, id: 1, local: ["label"] });
    session.attach(1, concept, { label: 2, png: 4 });
    concept.set("label", "mine");
    concept.save_changes();
    session.answer(0, { type: "target", id: 1, target: 1 }); // to state 2, whose label is value 2 ("none")
    expect(concept.get("label")).toBe("none");
  });
});

/** A recording 2-D context for every canvas and 8 x 8 bitmaps, for the tests of one describe block. */
function drawingStubs() {
  beforeEach(() => {
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(createRecordingContext());
    vi.stubGlobal("createImageBitmap", async () => ({ width: 8, height: 8 }));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });
}

describe("mount", () => {
  drawingStubs();

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

describe("mountPage", () => {
  drawingStubs();

  it("resolves shared values in the layout and answers a precomputed class switch", async () => {
    const root = document.createElement("div");
    const state = { classes: { $value: 0 }, predictions: { $value: 1 }, target: { $value: 2 }, predicted: { $value: 2 } };
    mountPage(root, {
      layout: { view: "target", id: 0, local: [], state },
      values: [["a", "b"], [{ index: 0, name: "a", probability: 0.7 }, { index: 1, name: "b", probability: 0.3 }], 0, 1],
      precomputed: {
        start: 0, requests: ['0|target|{"target":1}'], replies: [{ type: "target_set", target: 1 }],
        views: [{ target: 2 }, { target: 3 }], states: [[0], [1]], next: [{ 0: 1 }, { 0: 1 }],
      },
    });
    await flush();
    const select = root.querySelector(".cs-class-select");
    expect(select.value).toBe("0");
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    await flush();
    expect(select.value).toBe("1");
    expect(root.querySelector(".cs-error").hidden).toBe(true);
  });
});
