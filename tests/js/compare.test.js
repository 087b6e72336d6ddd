import { afterEach, describe, expect, it } from "vitest";
import view, { formatScore } from "../../js/compare.js";
import { createFakeModel } from "./fake_model.js";

const png = (tag) => new DataView(new Uint8Array([137, 80, 78, 71, tag]).buffer);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const tile = (method, overrides = {}) => ({
  method,
  family: "gradient",
  library: "Captum",
  png: png(1),
  scores: { mass_accuracy: 0.5, pointing_game: 1 },
  seconds: 0.25,
  error: "",
  ...overrides,
});

let cleanup;
afterEach(() => cleanup?.());

async function setup(overrides = {}) {
  const model = createFakeModel({
    classes: ["cat", "dog", "fox"],
    target: 1,
    predicted: 1,
    metrics: ["mass_accuracy", "pointing_game"],
    tiles: [tile("saliency"), tile("gradcam", { family: "CAM", scores: { mass_accuracy: 0.125, pointing_game: 0 } })],
    selected: "",
    graded: true,
    image_png: png(0),
    busy: false,
    error: "",
    ...overrides,
  });
  const el = document.createElement("div");
  cleanup = view.render({ model, el });
  await flush();
  const q = (s) => el.querySelector(s);
  return { model, el, q, tiles: () => [...el.querySelectorAll(".cs-tile")] };
}

describe("CompareView front end", () => {
  it("shows one tile per method with its image and headline score", async () => {
    const { tiles, q, el } = await setup();
    expect(tiles().map((t) => t.dataset.method)).toEqual(["saliency", "gradcam"]);
    expect(tiles().map((t) => t.querySelector(".cs-score").textContent)).toEqual([
      "mass_accuracy 0.50",
      "mass_accuracy 0.13",
    ]);
    expect(tiles()[0].querySelector("img").src).toMatch(/^blob:/);
    expect([...q("select").options].map((o) => o.textContent)).toEqual(["cat", "dog (predicted)", "fox"]);
    expect(q("select").value).toBe("1");
    expect(el.querySelector(".cs-compare").dataset.ready).toBe("true");
  });

  it("enlarges a clicked tile with all its scores and shrinks it on a second click", async () => {
    const { model, tiles, q } = await setup();
    tiles()[1].click();
    expect(model.get("selected")).toBe("gradcam");
    expect(model.saved).toBe(1);
    await flush();
    expect(q(".cs-detail").dataset.method).toBe("gradcam");
    const rows = [...q(".cs-detail").querySelectorAll("tr")].map((r) => [r.dataset.metric, r.dataset.value]);
    expect(rows).toEqual([
      ["mass_accuracy", "0.125"],
      ["pointing_game", "0"],
    ]);
    expect(tiles()[1].getAttribute("aria-pressed")).toBe("true");
    tiles()[1].click();
    await flush();
    expect(model.get("selected")).toBe("");
    expect(q(".cs-detail").children.length).toBe(0);
  });

  it("asks Python to explain another class and keeps only the latest reply", async () => {
    const { model, q } = await setup();
    q("select").value = "0";
    q("select").dispatchEvent(new Event("change"));
    q("select").value = "2";
    q("select").dispatchEvent(new Event("change"));
    expect(model.sent.map(({ type, target }) => [type, target])).toEqual([
      ["target", 0],
      ["target", 2],
    ]);
    model.receive({ type: "error", id: model.sent[0].id, message: "stale" });
    await flush();
    expect(q(".cs-error").hidden).toBe(true);
    model.receive({ type: "error", id: model.sent[1].id, message: "target 2 failed" });
    expect(q(".cs-error").textContent).toBe("Error: target 2 failed");
  });

  it("shows pending tiles, tile errors and no scores without ground truth", async () => {
    const { tiles, el } = await setup({
      graded: false,
      tiles: [tile("saliency", { png: new DataView(new ArrayBuffer(0)), scores: {} }),
        tile("gradcam", { png: new DataView(new ArrayBuffer(0)), error: "ValueError: no spatial extent" })],
    });
    expect(tiles()[0].querySelector(".cs-pending")).not.toBeNull();
    expect(tiles()[0].dataset.ready).toBe("false");
    expect(tiles()[0].querySelector(".cs-score").textContent).toBe("");
    expect(tiles()[1].querySelector(".cs-tile-error").textContent).toBe("ValueError: no spatial extent");
    expect(el.querySelector(".cs-compare").dataset.ready).toBe("false");
  });

  it("formats scores with two decimals and a dash when unknown", () => {
    expect([formatScore(0.456), formatScore(null), formatScore(Number.NaN), formatScore(1)]).toEqual([
      "0.46",
      "–",
      "–",
      "1.00",
    ]);
  });
});
