import { afterEach, describe, expect, it } from "vitest";
import view from "../../js/target.js";
import { createFakeModel } from "./fake_model.js";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
let cleanup;
afterEach(() => cleanup?.());

async function setup() {
  const model = createFakeModel({
    classes: ["cat", "dog", "fox"],
    predictions: [
      { index: 1, name: "dog", probability: 0.75 },
      { index: 2, name: "fox", probability: 0.2 },
    ],
    target: 1,
    predicted: 1,
    busy: false,
    error: "",
  });
  const el = document.createElement("div");
  cleanup = view.render({ model, el });
  await flush();
  return { model, q: (s) => el.querySelector(s), items: () => [...el.querySelectorAll(".cs-class")] };
}

describe("TargetView front end", () => {
  it("shows the top classes with probabilities and marks the explained one", async () => {
    const { items, q } = await setup();
    expect(items().map((i) => i.textContent)).toEqual(["dog 75.0 %", "fox 20.0 %"]);
    expect(items().map((i) => i.getAttribute("aria-pressed"))).toEqual(["true", "false"]);
    expect(items()[0].querySelector(".cs-bar span").style.width).toBe("75%");
    expect([...q(".cs-select").options].map((o) => o.textContent)).toEqual(["cat", "dog (predicted)", "fox"]);
    expect(q("select").value).toBe("1");
  });

  it("asks to explain another class from a bar or the dropdown", async () => {
    const { model, items, q } = await setup();
    items()[1].click();
    q(".cs-select").value = "0";
    q(".cs-select").dispatchEvent(new Event("change"));
    expect(model.sent.map(({ type, target }) => [type, target])).toEqual([
      ["target", 2],
      ["target", 0],
    ]);
  });

  it("follows the target Python explains", async () => {
    const { model, items, q } = await setup();
    model.set("target", 2);
    await flush();
    expect(items().map((i) => i.getAttribute("aria-pressed"))).toEqual(["false", "true"]);
    expect(q(".cs-select").value).toBe("2");
  });

  it("asks for a contrast from the rather-than dropdown and keeps it when the target changes", async () => {
    const { model, items, q } = await setup();
    const versus = q(".cs-versus-select");
    expect([...versus.options].map((o) => [o.value, o.disabled])).toEqual([
      ["-1", false], ["0", false], ["1", true], ["2", false],
    ]);
    versus.value = "2";
    versus.dispatchEvent(new Event("change"));
    model.set("versus", 2);
    await flush();
    expect(items().map((i) => i.classList.contains("cs-versus"))).toEqual([false, true]);
    expect(versus.value).toBe("2");
    q(".cs-select").value = "0";
    q(".cs-select").dispatchEvent(new Event("change"));
    items()[1].click(); // the contrasted class as target: the contrast ends
    versus.value = "-1";
    versus.dispatchEvent(new Event("change"));
    expect(model.sent.map(({ type, target, versus }) => [type, target, versus])).toEqual([
      ["contrast", 1, 2],
      ["contrast", 0, 2],
      ["target", 2, undefined],
      ["target", 1, undefined],
    ]);
  });
});

describe("TargetView front end on a segmenter", () => {
  it("lists the segments, marks the explained one and asks for another on a click", async () => {
    const model = createFakeModel({
      classes: ["background", "circle", "square"],
      predictions: [{ index: 0, name: "background", probability: 0.9 }, { index: 1, name: "circle", probability: 0.1 }],
      target: 1, predicted: 1, busy: false, error: "",
      segments: [
        { index: 0, name: "circle", cls: 1, box: [2, 3, 10, 12], score: 0.06 },
        { index: 1, name: "square", cls: 2, box: [20, 20, 24, 24], score: 0.004 },
      ],
      segment: 0,
    });
    const el = document.createElement("div");
    cleanup = view.render({ model, el });
    await flush();
    const buttons = () => [...el.querySelectorAll(".cs-segment")];
    expect(buttons().map((b) => b.textContent)).toEqual(["circle 6.0 %", "square 0.4 %"]);
    expect(buttons().map((b) => b.getAttribute("aria-pressed"))).toEqual(["true", "false"]);
    expect(el.querySelector(".cs-versus-select").closest("label").hidden).toBe(true);
    buttons()[1].click();
    expect(model.sent.map(({ type, index }) => [type, index])).toEqual([["segment", 1]]);
    model.set("segment", 1);
    await flush();
    expect(buttons().map((b) => b.getAttribute("aria-pressed"))).toEqual(["false", "true"]);
  });

  it("hides the segment list on a classifier", async () => {
    const { q } = await setup();
    expect(q(".cs-segments").hidden).toBe(true);
    expect(q(".cs-versus-select").closest("label").hidden).toBe(false);
  });
});
