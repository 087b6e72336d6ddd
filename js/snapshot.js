// @ts-check
// Static HTML snapshots: render saved view states with the same view modules, without a kernel.
// The page holds <div id="cs-root"> and <script id="cs-snapshot" type="application/json"> with the
// layout written by conceptscope.widgets.snapshot: {view, state} or {box: "row"|"column", children}.
import concepts from "./concepts.js";
import gallery from "./gallery.js";
import heatmap from "./heatmap.js";
import { element } from "./lib/dom.js";
import { createStaticModel, decodeState } from "./lib/static_model.js";
import semantic_search from "./semantic_search.js";
import target from "./target.js";
import tree from "./tree.js";

export const VIEWS = { concepts, gallery, heatmap, semantic_search, target, tree };

/** Render the snapshot `node` into `parent`. */
export function mount(parent, node) {
  if (node.box) {
    const box = element("div", { className: `cs-box cs-${node.box}` });
    Object.assign(box.style, { display: "flex", flexDirection: node.box, flexWrap: node.box === "row" ? "wrap" : "nowrap", gap: "16px 24px", alignItems: "flex-start" });
    parent.append(box);
    for (const child of node.children) mount(box, child);
    return;
  }
  const view = VIEWS[node.view];
  if (!view) throw new Error(`unknown view ${node.view}`);
  const el = element("div", { className: `cs-widget cs-widget-${node.view}` });
  parent.append(el);
  view.render({ model: createStaticModel(decodeState(node.state)), el });
}

const data = globalThis.document?.getElementById("cs-snapshot");
if (data) mount(document.getElementById("cs-root"), JSON.parse(data.textContent));
