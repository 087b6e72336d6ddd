import { afterEach, describe, expect, it } from "vitest";
import { focusable, itemKeys } from "../../js/lib/keys.js";
import concepts from "../../js/concepts.js";
import heatmap from "../../js/heatmap.js";
import { createFakeModel } from "./fake_model.js";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const key = (target, name) => target.dispatchEvent(new KeyboardEvent("keydown", { key: name, bubbles: true }));
let cleanup;
afterEach(() => {
  cleanup?.();
  document.body.replaceChildren();
});

describe("keyboard", () => {
  it("moves focus with the arrows and clicks with Enter", () => {
    const list = document.createElement("ul");
    const clicked = [];
    for (const name of ["a", "b", "c"]) {
      const item = focusable(document.createElement("li"));
      item.textContent = name;
      item.addEventListener("click", () => clicked.push(name));
      list.append(item);
    }
    document.body.append(list);
    list.addEventListener("keydown", itemKeys(list, "li"));
    const [a, , c] = list.children;
    expect(a.getAttribute("tabindex")).toBe("0");
    expect(a.getAttribute("role")).toBe("button");
    a.focus();
    key(a, "ArrowDown");
    expect(document.activeElement?.textContent).toBe("b");
    key(document.activeElement, "End");
    expect(document.activeElement).toBe(c);
    key(c, "ArrowDown"); // stays on the last
    expect(document.activeElement).toBe(c);
    key(c, "Enter");
    key(c, "ArrowUp");
    key(document.activeElement, " ");
    expect(clicked).toEqual(["c", "b"]);
  });

  it("selects a concept of the list from the keyboard", async () => {
    const model = createFakeModel({
      layers: ["l"], layer: "l", k: 2, region: [], busy: false, error: "", selected: {},
      concepts: [0, 1].map((channel) => ({
        layer: "l", channel, relevance: 1, share: 0.5, thumbnail: new Uint8Array([1]).buffer,
      })),
    });
    const el = document.createElement("div");
    document.body.append(el);
    cleanup = concepts.render({ model, el });
    await flush();
    const rows = el.querySelectorAll("li");
    rows[0].focus();
    key(rows[0], "ArrowDown");
    key(document.activeElement, "Enter");
    expect(model.sent.map(({ type, channel }) => [type, channel])).toEqual([["select", 1]]);
  });

  it("clears the heatmap's region with Escape", async () => {
    const model = createFakeModel({
      image_png: new DataView(new ArrayBuffer(0)), heatmap_png: new DataView(new ArrayBuffer(0)),
      colormap: "bwr", colormaps: ["bwr"], opacity: 0.6, region: [1, 2, 5, 6],
    });
    const el = document.createElement("div");
    document.body.append(el);
    cleanup = heatmap.render({ model, el });
    await flush();
    key(el.querySelector("canvas"), "Escape");
    expect(model.sent.map(({ type, box }) => [type, box])).toEqual([["region", []]]);
  });
});
