import { afterEach, describe, expect, it } from "vitest";
import view, { describeRemoved } from "../../js/perturbation.js";
import { createFakeModel } from "./fake_model.js";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
let cleanup;
afterEach(() => cleanup?.());

async function setup() {
  const model = createFakeModel({
    image_png: new Uint8Array([137, 80, 78, 71]).buffer,
    classes: ["cat", "dog", "fox"],
    target: 1,
    methods: ["saliency", "lrp_epsilon_plus_flat"],
    method: "lrp_epsilon_plus_flat",
    unit: "pixels",
    layer: "features.15",
    fraction: 0,
    removed: 0,
    total: 4096,
    probabilities: [
      { index: 1, name: "dog", original: 0.8, probability: 0.8 },
      { index: 2, name: "fox", original: 0.15, probability: 0.15 },
    ],
    busy: false,
    error: "",
  });
  const el = document.createElement("div");
  cleanup = view.render({ model, el });
  await flush();
  return { model, q: (s) => el.querySelector(s), rows: () => [...el.querySelectorAll(".cs-class")] };
}

describe("PerturbationView front end", () => {
  it("shows the picture, what is removed and the probabilities before and now", async () => {
    const { q, rows, model } = await setup();
    expect(q("img").src).toMatch(/^blob:/);
    expect(q(".cs-caption").textContent).toBe("removed 0 % of the pixels (0 of 4096)");
    expect(rows().map((r) => r.textContent)).toEqual(["dog 80.0 %", "fox 15.0 %"]);
    expect(rows()[0].classList.contains("cs-target-class")).toBe(true);
    model.set("fraction", 0.25);
    model.set("removed", 1024);
    model.set("probabilities", [
      { index: 1, name: "dog", original: 0.8, probability: 0.3 },
      { index: 2, name: "fox", original: 0.15, probability: 0.6 },
    ]);
    await flush();
    expect(q(".cs-caption").textContent).toBe("removed 25 % of the pixels (1024 of 4096)");
    expect(rows()[0].querySelector(".cs-now").style.width).toBe("30%");
    expect(rows()[0].querySelector(".cs-before").style.left).toBe("80%");
  });

  it("asks Python for each slider position, method and unit", async () => {
    const { q, model } = await setup();
    const slider = q(".cs-slider");
    for (const value of ["10", "40"]) {
      slider.value = value;
      slider.dispatchEvent(new Event("input"));
    }
    q(".cs-method").value = "saliency";
    q(".cs-method").dispatchEvent(new Event("change"));
    q(".cs-unit").value = "concepts";
    q(".cs-unit").dispatchEvent(new Event("change"));
    expect(model.sent.map(({ id, ...rest }) => rest)).toEqual([
      { type: "fraction", fraction: 0.1 },
      { type: "fraction", fraction: 0.4 },
      { type: "method", method: "saliency" },
      { type: "unit", unit: "concepts" },
    ]);
    model.set("unit", "concepts");
    await flush();
    expect(q(".cs-method").disabled).toBe(true);
    expect(q(".cs-caption").textContent).toBe("removed 0 % of the concepts of features.15 (0 of 4096)");
  });

  it("describes what is removed", () => {
    expect(describeRemoved(0.504, 2, 4, "pixels")).toBe("removed 50 % of the pixels (2 of 4)");
  });
});
