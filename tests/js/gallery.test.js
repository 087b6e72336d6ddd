import { afterEach, describe, expect, it } from "vitest";
import view, { classesText, pageText } from "../../js/gallery.js";
import { createFakeModel } from "./fake_model.js";

const png = (tag) => new DataView(new Uint8Array([137, 80, 78, 71, tag]).buffer);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

let cleanup;
afterEach(() => cleanup?.());

async function setup(overrides = {}) {
  const model = createFakeModel({
    concept: { layer: "f.15", channel: 3 },
    mode: "relevance",
    crop: true,
    page: 1,
    pages: 3,
    page_size: 2,
    references: [
      { index: 12, score: 1.5, image: png(1) },
      { index: 4, score: 0.75, image: png(2) },
    ],
    classes: [{ name: "red circle", share: 0.61 }],
    note: "",
    busy: false,
    error: "",
    ...overrides,
  });
  const el = document.createElement("div");
  cleanup = view.render({ model, el });
  await flush();
  return { model, el, q: (s) => el.querySelector(s), figures: () => [...el.querySelectorAll("figure")] };
}

describe("NeuronGallery front end", () => {
  it("shows the concept's references with index and score, and the pager", async () => {
    const { q, figures } = await setup();
    expect(q(".cs-title").textContent).toBe("references of f.15 #3");
    expect(figures().map((f) => f.dataset.index)).toEqual(["12", "4"]);
    expect(figures()[0].querySelector("figcaption").textContent).toBe("#12 · 1.5");
    expect(figures()[0].querySelector("img").src).toMatch(/^blob:/);
    expect(q(".cs-page").textContent).toBe("page 2 of 3");
    expect([q(".cs-prev").disabled, q(".cs-next").disabled]).toEqual([false, false]);
    expect(q(".cs-mode").value).toBe("relevance");
    expect(q(".cs-crop").checked).toBe(true);
    expect(q(".cs-classes").textContent).toBe("for: red circle 61.0 %");
  });

  it("asks for the next and previous page with the current mode and crop", async () => {
    const { model, q } = await setup();
    q(".cs-next").click();
    q(".cs-prev").click();
    expect(model.sent.map(({ type, mode, crop, page }) => [type, mode, crop, page])).toEqual([
      ["query", "relevance", true, 2],
      ["query", "relevance", true, 0],
    ]);
  });

  it("switches RelMax/ActMax and crop from the first page", async () => {
    const { model, q } = await setup();
    q(".cs-mode").value = "activation";
    q(".cs-mode").dispatchEvent(new Event("change"));
    q(".cs-crop").checked = false;
    q(".cs-crop").dispatchEvent(new Event("change"));
    expect(model.sent.map(({ mode, crop, page }) => [mode, crop, page])).toEqual([
      ["activation", true, 0],
      ["activation", false, 0],
    ]);
  });

  it("picks a reference on click", async () => {
    const { model, figures } = await setup();
    figures()[1].click();
    expect(model.sent[0]).toMatchObject({ type: "pick", index: 4 });
  });

  it("redraws once when a new page arrives", async () => {
    const { model, figures, q } = await setup();
    model.set("references", [{ index: 9, score: 0.1, image: png(3) }]);
    model.set("page", 2);
    await flush();
    expect(figures().map((f) => f.dataset.index)).toEqual(["9"]);
    expect(q(".cs-next").disabled).toBe(true);
  });

  it("shows a note instead of references", async () => {
    const { q } = await setup({ references: [], pages: 0, page: 0, note: "the atlas has no references for layer 'f.0'" });
    expect(q(".cs-note").textContent).toContain("no references");
    expect(q(".cs-page").textContent).toBe("no pages");
  });
});

describe("gallery text", () => {
  it("formats pages and classes", () => {
    expect(pageText(0, 1)).toBe("page 1 of 1");
    expect(classesText([])).toBe("");
    expect(classesText([{ name: "a", share: 0.5 }, { name: "b", share: 0.25 }])).toBe("for: a 50.0 %, b 25.0 %");
  });
});
