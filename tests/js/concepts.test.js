import { afterEach, describe, expect, it } from "vitest";
import view, { isSelected, rankingNote } from "../../js/concepts.js";
import { createFakeModel } from "./fake_model.js";

const png = (tag) => new DataView(new Uint8Array([137, 80, 78, 71, tag]).buffer);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const concept = (channel, share) => ({ layer: "f.15", channel, relevance: share * 2, share, thumbnail: png(channel) });

let cleanup;
afterEach(() => cleanup?.());

async function setup(overrides = {}) {
  const model = createFakeModel({
    layers: ["f.8", "f.15"],
    layer: "f.15",
    concepts: [concept(3, 0.25), concept(7, 0.125)],
    selected: {},
    region: [],
    busy: false,
    error: "",
    ...overrides,
  });
  const el = document.createElement("div");
  cleanup = view.render({ model, el });
  await flush();
  const rows = () => [...el.querySelectorAll("li")];
  return { model, el, rows, q: (s) => el.querySelector(s) };
}

describe("ConceptList front end", () => {
  it("lists the concepts with thumbnail, name, share bar and percentage", async () => {
    const { rows, q } = await setup();
    expect(rows().map((r) => [r.dataset.layer, r.dataset.channel])).toEqual([
      ["f.15", "3"],
      ["f.15", "7"],
    ]);
    const first = rows()[0];
    expect(first.querySelector("img.cs-thumb").src).toMatch(/^blob:/);
    expect(first.querySelector(".cs-name").textContent).toBe("f.15 #3");
    expect(first.querySelector(".cs-bar span").style.width).toBe("25%");
    expect(first.querySelector(".cs-share").textContent).toBe("25.0 %");
    expect([...q("select").options].map((o) => o.value)).toEqual(["f.8", "f.15"]);
    expect(q("select").value).toBe("f.15");
    expect(q(".cs-region").textContent).toBe("f.15: whole image");
  });

  it("selects on click at once and sends a select request", async () => {
    const { model, rows } = await setup();
    rows()[1].click();
    expect(model.sent).toEqual([{ type: "select", id: model.sent[0].id, layer: "f.15", channel: 7 }]);
    expect(rows()[1].getAttribute("aria-selected")).toBe("true");
    expect(rows()[0].getAttribute("aria-selected")).toBe("false");
  });

  it("follows Python's selection once the reply came (an error reply reverts the highlight)", async () => {
    const { model, rows } = await setup();
    rows()[1].click();
    model.receive({ type: "error", id: model.sent[0].id, message: "nope" });
    expect(rows()[1].getAttribute("aria-selected")).toBe("false");
    model.set("selected", { layer: "f.15", channel: 3 });
    await flush();
    expect(rows()[0].getAttribute("aria-selected")).toBe("true");
  });

  it("asks for another layer's concepts and redraws when they arrive", async () => {
    const { model, q, rows } = await setup();
    q("select").value = "f.8";
    q("select").dispatchEvent(new Event("change"));
    expect(model.sent[0]).toMatchObject({ type: "layer", layer: "f.8" });
    model.set("layer", "f.8");
    model.set("concepts", [{ ...concept(1, 0.5), layer: "f.8" }]);
    await flush();
    expect(rows().map((r) => r.dataset.layer + ":" + r.dataset.channel)).toEqual(["f.8:1"]);
  });

  it("describes the region the ranking is restricted to", async () => {
    const { model, q } = await setup();
    model.set("region", [1, 2, 30, 40]);
    await flush();
    expect(q(".cs-region").textContent).toBe("f.15: inside region (1, 2)–(30, 40)");
  });

  it("shows the error trait", async () => {
    const { model, q } = await setup();
    model.set("error", "KeyError: features.99");
    expect(q(".cs-error").hidden).toBe(false);
    expect(q(".cs-error").textContent).toBe("Error: KeyError: features.99");
  });
});

describe("ConceptList helpers", () => {
  it("compares selections and describes rankings", () => {
    expect(isSelected({ layer: "a", channel: 1 }, { layer: "a", channel: 1 })).toBe(true);
    expect(isSelected({ layer: "a", channel: 1 }, {})).toBe(false);
    expect(rankingNote("", [])).toBe("…: whole image");
  });

  it("names labelled concepts by their label, with the layer and channel in small", async () => {
    const { rows } = await setup({ concepts: [{ ...concept(3, 0.25), label: "stripes" }, { ...concept(7, 0.1), label: "unlabelled" }] });
    const [first, second] = rows();
    expect(first.querySelector(".cs-label").textContent).toBe("stripes");
    expect(first.querySelector(".cs-id").textContent).toBe("f.15 #3");
    expect(second.querySelector(".cs-label").textContent).toBe("unlabelled");
    expect(first.querySelector("img").alt).toBe("stripes (f.15 #3)");
  });
});
