// @ts-check
// Static HTML snapshots: render saved view states with the same view modules, without a kernel.
// The page holds <div id="cs-root"> and <script id="cs-snapshot" type="application/json"> with what
// conceptscope.widgets.snapshot wrote: {layout, values?, precomputed?}; the layout is {view, id, local, state} or
// {box: "row"|"column", children}; precomputed clicks are answered by the session (js/lib/static_model.js).
import concepts from "./concepts.js";
import gallery from "./gallery.js";
import heatmap from "./heatmap.js";
import { element } from "./lib/dom.js";
import { createSession, createStaticModel, decodeState } from "./lib/static_model.js";
import semantic_search from "./semantic_search.js";
import target from "./target.js";
import tree from "./tree.js";

export const VIEWS = { concepts, gallery, heatmap, semantic_search, target, tree };

/** The value indices of a saved state ({trait: {"$value": i}}): what the view shows of the shared values. */
const shownValues = (state) =>
  Object.fromEntries(Object.entries(state).flatMap(([k, v]) => (typeof v?.$value === "number" ? [[k, v.$value]] : [])));

/** Render the snapshot `node` into `parent`; its views' requests go to `session` (createSession). */
export function mount(parent, node, session = createSession(null)) {
  if (node.box) {
    const box = element("div", { className: `cs-box cs-${node.box}` });
    Object.assign(box.style, { display: "flex", flexDirection: node.box, flexWrap: node.box === "row" ? "wrap" : "nowrap", gap: "16px 24px", alignItems: "flex-start" });
    parent.append(box);
    for (const child of node.children) mount(box, child, session);
    return;
  }
  const view = VIEWS[node.view];
  if (!view) throw new Error(`unknown view ${node.view}`);
  const el = element("div", { className: `cs-widget cs-widget-${node.view}` });
  parent.append(el);
  const model = createStaticModel(decodeState(node.state, session.value), { session, id: node.id, local: node.local ?? [] });
  session.attach(node.id, model, shownValues(node.state));
  view.render({ model, el });
}

/** Render a page's snapshot data ({layout, values, precomputed}) into `parent`. */
export function mountPage(parent, data) {
  mount(parent, data.layout, createSession(data.precomputed ?? null, data.values ?? []));
}

const data = globalThis.document?.getElementById("cs-snapshot");
if (data) mountPage(document.getElementById("cs-root"), JSON.parse(data.textContent));
