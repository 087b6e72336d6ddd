import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NODE, layoutTree, linkPath, pathKey } from "../../js/lib/tree_layout.js";
import view, { pathLabel } from "../../js/tree.js";
import { createFakeModel, createRecordingContext } from "./fake_model.js";

const png = (tag) => new DataView(new Uint8Array([137, 80, 78, 71, tag]).buffer);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

const node = (path, share, children = null) => ({
  layer: path.at(-1)[0],
  channel: path.at(-1)[1],
  relevance: share,
  share,
  path,
  children,
});
const ROOT = [["f.15", 3]];
const TREE = node(ROOT, 1, [
  node([...ROOT, ["f.11", 6]], 0.5, [node([...ROOT, ["f.11", 6], ["f.8", 1]], 0.25, [])]),
  node([...ROOT, ["f.11", 2]], 0.3),
]);

describe("layoutTree", () => {
  it("places the root left and each level of sub-concepts further right, siblings apart", () => {
    const { nodes, links, width, height } = layoutTree(TREE);
    const at = Object.fromEntries(nodes.map((n) => [n.key, n]));
    const [root, a, b, c] = ["f.15:3", "f.15:3/f.11:6", "f.15:3/f.11:2", "f.15:3/f.11:6/f.8:1"].map((k) => at[k]);
    expect(root.left).toBe(0);
    expect(a.left).toBe(NODE.width + NODE.gapX);
    expect(b.left).toBe(a.left);
    expect(c.left).toBe(2 * (NODE.width + NODE.gapX));
    expect(Math.abs(a.top - b.top)).toBeGreaterThanOrEqual(NODE.height + NODE.gapY);
    expect(root.top).toBeCloseTo((a.top + b.top) / 2); // the parent centred on its children
    expect(Math.min(...nodes.map((n) => n.top))).toBe(0);
    expect(width).toBe(c.left + NODE.width);
    expect(height).toBe(Math.max(...nodes.map((n) => n.top)) + NODE.height);
    expect(links.map((l) => [l.source, l.target])).toEqual([
      ["f.15:3", "f.15:3/f.11:6"],
      ["f.15:3", "f.15:3/f.11:2"],
      ["f.15:3/f.11:6", "f.15:3/f.11:6/f.8:1"],
    ]);
    expect(links[0].d.startsWith(`M${NODE.width},${root.top + NODE.height / 2}C`)).toBe(true);
  });
  it("treats unexpanded nodes (children null) as leaves", () => {
    const { nodes } = layoutTree(node(ROOT, 1));
    expect(nodes).toHaveLength(1);
  });
  it("keys and links", () => {
    expect(pathKey([["a", 1], ["b", 2]])).toBe("a:1/b:2");
    expect(linkPath(0, 0, 10, 20)).toBe("M0,0C5,0 5,20 10,20");
    expect(pathLabel([["a", 1], ["b", 2]])).toBe("a #1 → b #2");
  });
});

describe("CompositionTree front end", () => {
  let ctx;
  let cleanup;
  beforeEach(() => {
    ctx = createRecordingContext();
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(ctx);
    vi.stubGlobal("createImageBitmap", async (blob) => ({ width: 64, height: 64, tag: new Uint8Array(await blob.arrayBuffer())[4] }));
  });
  afterEach(() => {
    cleanup?.();
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  async function setup(overrides = {}) {
    const model = createFakeModel({
      tree: TREE,
      selected: ROOT,
      image_png: png(1),
      heatmap_png: png(2),
      top: 5,
      busy: false,
      error: "",
      ...overrides,
    });
    const el = document.createElement("div");
    cleanup = view.render({ model, el });
    await flush();
    await flush();
    const nodes = () => [...el.querySelectorAll(".cs-node")];
    return { model, el, nodes, q: (s) => el.querySelector(s) };
  }

  it("draws a node per tree entry with name, share and expansion state, and the links", async () => {
    const { nodes, el } = await setup();
    expect(nodes().map((g) => [g.dataset.path, g.dataset.expanded])).toEqual([
      ["f.15:3", "true"],
      ["f.15:3/f.11:6", "true"],
      ["f.15:3/f.11:2", "false"],
      ["f.15:3/f.11:6/f.8:1", "true"],
    ]);
    expect([...nodes()[1].querySelectorAll("text")].map((t) => t.textContent)).toEqual(["f.11 #6", "50.0 %"]);
    expect([...nodes()[2].querySelectorAll("text")].map((t) => t.textContent)).toContain("+");
    expect(nodes()[0].classList.contains("cs-selected")).toBe(true);
    expect(el.querySelectorAll("path.cs-link")).toHaveLength(3);
  });

  it("sends an expand request with the node's path on click and marks it pending", async () => {
    const { model, nodes } = await setup();
    nodes()[2].dispatchEvent(new MouseEvent("click"));
    expect(model.sent).toEqual([{ type: "expand", id: model.sent[0].id, path: [["f.15", 3], ["f.11", 2]] }]);
    expect(nodes()[2].classList.contains("cs-pending")).toBe(true);
    model.receive({ type: "done", id: model.sent[0].id });
    expect(nodes()[2].classList.contains("cs-pending")).toBe(false);
  });

  it("draws the selected node's heatmap over the picture with its label", async () => {
    const { q } = await setup();
    const canvas = q("canvas");
    expect(canvas.dataset.shown).toBe("f.15 #3");
    expect([canvas.width, canvas.height]).toEqual([128, 128]);
    const drawn = ctx.calls.filter(([name]) => name === "drawImage").map(([, bitmap]) => bitmap.tag);
    expect(drawn).toEqual([1, 2]);
  });

  it("redraws on a new selection from Python", async () => {
    const { model, q, nodes } = await setup();
    model.set("selected", [...ROOT, ["f.11", 6]]);
    model.set("heatmap_png", png(5));
    await flush();
    await flush();
    expect(q("canvas").dataset.shown).toBe("f.15 #3 → f.11 #6");
    expect(q(".cs-label").textContent).toBe("f.15 #3 → f.11 #6");
    expect(nodes()[1].classList.contains("cs-selected")).toBe(true);
  });

  it("invites a selection when there is no tree yet", async () => {
    const { q, nodes } = await setup({ tree: {}, selected: [], heatmap_png: new DataView(new ArrayBuffer(0)) });
    expect(nodes()).toHaveLength(0);
    expect(q(".cs-status").textContent).toContain("select a concept");
  });
});
