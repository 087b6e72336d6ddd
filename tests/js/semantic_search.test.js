import { afterEach, describe, expect, it } from "vitest";
import view, { auditSummary, formatScore, hitsSummary, splitList, VERDICT_COLORS } from "../../js/semantic_search.js";
import { createFakeModel } from "./fake_model.js";

const png = (tag) => new DataView(new Uint8Array([137, 80, 78, 71, tag]).buffer);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const hit = (layer, channel, score, label = "") => ({
  layer,
  channel,
  score,
  label,
  label_score: label ? 0.2 : null,
  clarity: 0.5,
  polysemanticity: null,
  redundancy: 0.875,
});
const audited = (channel, share, verdict, match) => ({
  layer: "f.15",
  channel,
  relevance: share * 4,
  share,
  valid: [0.1],
  spurious: [0.2],
  verdict,
  match,
});
const AUDIT = {
  cls: "red circle",
  valid: ["red", "circle"],
  spurious: ["striped"],
  threshold: 0.05,
  layers: [
    {
      layer: "f.15",
      concepts: [audited(3, 0.5, "valid", "red"), audited(9, 0.25, "spurious", "striped"), audited(1, 0.1, "unexpected", null)],
      spurious_share: 0.25,
      valid_share: 0.625,
      unexpected_share: 0.125,
      unexpected: [audited(1, 0.1, "unexpected", null)],
    },
  ],
};

let cleanup;
afterEach(() => cleanup?.());

async function setup(overrides = {}) {
  const model = createFakeModel({
    layers: ["f.11", "f.15"],
    layer: "",
    query: "red",
    k: 10,
    vocabulary: ["red", "blue"],
    hits: [hit("f.15", 3, 0.3125, "red"), hit("f.11", 7, 0.25)],
    thumbnails: { "f.15:3": [{ index: 12, image: png(1) }, { index: 4, image: png(2) }] },
    selected: {},
    classes: ["red circle", "cross"],
    audit: {},
    busy: false,
    error: "",
    ...overrides,
  });
  const el = document.createElement("div");
  cleanup = view.render({ model, el });
  await flush();
  const q = (s) => el.querySelector(s);
  const hitRows = () => [...el.querySelectorAll(".cs-hits tbody tr")];
  const auditRows = () => [...el.querySelectorAll(".cs-audit tbody tr")];
  const type = (selector, value, event = "change") => {
    q(selector).value = value;
    q(selector).dispatchEvent(new Event(event));
  };
  return { model, el, q, hitRows, auditRows, type };
}

describe("SemanticSearch front end", () => {
  it("lists the hits with similarity, label, scores and reference thumbnails", async () => {
    const { q, hitRows } = await setup();
    expect(hitRows().map((r) => [r.dataset.layer, r.dataset.channel])).toEqual([
      ["f.15", "3"],
      ["f.11", "7"],
    ]);
    const cells = (row) => [...row.querySelectorAll("td")].map((td) => td.textContent);
    expect(cells(hitRows()[0]).slice(0, 6)).toEqual(["f.15 #3", "0.313", "red", "0.50", "–", "0.88"]);
    expect(cells(hitRows()[1])[2]).toBe("–"); // no label
    const thumbs = [...hitRows()[0].querySelectorAll(".cs-refs img")];
    expect(thumbs.map((img) => img.alt)).toEqual(["reference 12", "reference 4"]);
    expect(thumbs[0].src).toMatch(/^blob:/);
    expect(hitRows()[1].querySelectorAll(".cs-refs img").length).toBe(0);
    expect(q(".cs-summary").textContent).toBe('2 concepts for "red" in all layers');
    expect(q(".cs-query").value).toBe("red");
    expect([...q(".cs-layer").options].map((o) => o.value)).toEqual(["", "f.11", "f.15"]);
    expect(q(".cs-vocabulary").value).toBe("red, blue");
    expect([...q(".cs-class").options].map((o) => o.value)).toEqual(["red circle", "cross"]);
  });

  it("searches on Enter and on the button, with the layer filter", async () => {
    const { model, q, type } = await setup();
    q(".cs-query").value = "blue square";
    q(".cs-query").dispatchEvent(new KeyboardEvent("keydown", { key: "a" }));
    expect(model.sent).toEqual([]);
    q(".cs-query").dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    type(".cs-layer", "f.11");
    q(".cs-go").click();
    expect(model.sent.map(({ type, query, layer }) => [type, query, layer])).toEqual([
      ["search", "blue square", ""],
      ["search", "blue square", "f.11"],
    ]);
    expect(typeof model.sent[0].id).toBe("string");
  });

  it("adds thumbnails as they arrive, without touching the rows", async () => {
    const { model, hitRows } = await setup();
    const row = hitRows()[1];
    model.set("thumbnails", { ...model.get("thumbnails"), "f.11:7": [{ index: 5, image: png(3) }] });
    await flush();
    expect(hitRows()[1]).toBe(row);
    expect(row.querySelector(".cs-refs img").alt).toBe("reference 5");
  });

  it("selects a hit on click at once; an error reply reverts, the selected trait decides", async () => {
    const { model, hitRows } = await setup();
    hitRows()[1].click();
    expect(model.sent).toEqual([{ type: "select", id: model.sent[0].id, layer: "f.11", channel: 7 }]);
    expect(hitRows().map((r) => r.getAttribute("aria-selected"))).toEqual(["false", "true"]);
    model.receive({ type: "error", id: model.sent[0].id, message: "nope" });
    expect(hitRows()[1].getAttribute("aria-selected")).toBe("false");
    model.set("selected", { layer: "f.15", channel: 3 });
    expect(hitRows()[0].getAttribute("aria-selected")).toBe("true");
  });

  it("sends the vocabulary and the audit as lists", async () => {
    const { model, type, q } = await setup();
    type(".cs-vocabulary", "green, square ,, ");
    type(".cs-class", "cross");
    type(".cs-valid", "red, circle");
    type(".cs-spurious", " striped ");
    q(".cs-run-audit").click();
    expect(model.sent.map(({ id, ...fields }) => fields)).toEqual([
      { type: "vocabulary", vocabulary: ["green", "square"] },
      { type: "audit", cls: "cross", valid: ["red", "circle"], spurious: ["striped"], layer: "" },
    ]);
  });

  it("shows the audit: a bar per concept coloured by verdict, and the shares of the class's relevance", async () => {
    const { model, q, auditRows } = await setup();
    model.set("audit", AUDIT);
    await flush();
    expect(q(".cs-audit-class").textContent).toBe("class red circle (valid: red; valid: circle; spurious: striped)");
    expect(q(".cs-audit-layer h4").textContent).toBe(
      "f.15 — class relevance: 25.0 % spurious · 62.5 % valid · 12.5 % unexpected",
    );
    expect(auditRows().map((r) => [r.dataset.channel, r.dataset.verdict])).toEqual([
      ["3", "valid"],
      ["9", "spurious"],
      ["1", "unexpected"],
    ]);
    const bars = auditRows().map((r) => r.querySelector(".cs-bar span").style);
    expect(bars.map((s) => s.width)).toEqual(["100%", "50%", "20%"]);
    const colors = bars.map((s) => s.background);
    expect(colors).toEqual([VERDICT_COLORS.valid, VERDICT_COLORS.spurious, VERDICT_COLORS.unexpected]);
    expect(auditRows()[1].querySelector(".cs-share").textContent).toBe("25.0 %");
    expect(auditRows()[2].querySelector(".cs-match").textContent).toBe("–");
    auditRows()[1].click();
    expect(model.sent.at(-1)).toMatchObject({ type: "select", layer: "f.15", channel: 9 });
    expect(auditRows()[1].getAttribute("aria-selected")).toBe("true");
  });

  it("shows error replies and the error trait, and marks itself busy while a search runs", async () => {
    const { model, q, el } = await setup();
    q(".cs-go").click();
    expect(el.querySelector(".cs-view").dataset.busy).toBe("true");
    model.receive({ type: "error", id: model.sent[0].id, message: "the query is empty" });
    expect(q(".cs-error").textContent).toBe("Error: the query is empty");
    expect(el.querySelector(".cs-view").dataset.busy).toBe("false");
    model.set("error", "unknown layer 'x'");
    expect(q(".cs-error").textContent).toBe("Error: unknown layer 'x'");
  });

  it("redraws the hits of a new query once", async () => {
    const { model, hitRows, q } = await setup();
    model.set("hits", [hit("f.11", 2, 0.5)]);
    model.set("query", "cross");
    model.set("layer", "f.11");
    await flush();
    expect(hitRows().map((r) => r.dataset.channel)).toEqual(["2"]);
    expect(q(".cs-summary").textContent).toBe('1 concept for "cross" in f.11');
    expect(q(".cs-layer").value).toBe("f.11");
  });
});

describe("SemanticSearch helpers", () => {
  it("splits lists and formats scores and summaries", () => {
    expect(splitList(" a, b ,,c ")).toEqual(["a", "b", "c"]);
    expect(splitList(" ")).toEqual([]);
    expect(formatScore(0.12345)).toBe("0.12");
    expect(formatScore(null)).toBe("–");
    expect(hitsSummary([], "", "")).toContain("type a description");
    expect(auditSummary({ layer: "l", spurious_share: null, valid_share: 1, unexpected_share: 0 })).toBe(
      "l — class relevance: – spurious · 100.0 % valid · 0.0 % unexpected",
    );
  });
});
