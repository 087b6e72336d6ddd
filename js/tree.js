// @ts-check
// CompositionTree: a concept and its sub-concepts in lower layers (laid out by d3-hierarchy), with
// the selected node's conditional heatmap. Clicking a node sends "expand" (Python computes its
// sub-concepts and selects it).
import { byteLength, createDecoder, drawComposite } from "./lib/canvas.js";
import { createChannel } from "./lib/channel.js";
import { element, style, svgElement } from "./lib/dom.js";
import { conceptLabel, conceptName, formatShare } from "./lib/format.js";
import { displayScale } from "./lib/geometry.js";
import { focusable, itemKeys } from "./lib/keys.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";
import { NODE, layoutTree, pathKey } from "./lib/tree_layout.js";

const CSS = `
.cs-tree { display: flex; flex-direction: column; gap: 4px; }
.cs-tree .cs-body { display: flex; gap: 12px; align-items: flex-start; overflow-x: auto; }
.cs-tree svg { flex: none; }
.cs-tree .cs-node { cursor: pointer; }
.cs-tree .cs-node rect.cs-box { fill: var(--cs-bg); stroke: var(--cs-border-strong); }
.cs-tree .cs-node:hover rect.cs-box { stroke: var(--cs-accent); }
.cs-tree .cs-node.cs-selected rect.cs-box { fill: var(--cs-selected-bg); stroke: var(--cs-selected); stroke-width: 2; }
.cs-tree .cs-node.cs-pending rect.cs-box { stroke-dasharray: 4 2; }
.cs-tree .cs-node text { font: 11px sans-serif; fill: var(--cs-fg); }
.cs-tree .cs-node:focus-visible { outline: none; }
.cs-tree .cs-node:focus-visible rect.cs-box { stroke: var(--cs-accent); stroke-width: 3; }
.cs-tree .cs-link { fill: none; stroke: var(--cs-border-strong); }
.cs-tree .cs-detail { display: flex; flex-direction: column; gap: 4px; max-width: 200px; flex: none; }
.cs-tree canvas { image-rendering: pixelated; }
`;
const DETAIL_WIDTH = 128;

/** Label of a tree path: its concepts from the root down, e.g. "features.15 #3 → features.12 #7". */
export function pathLabel(path) {
  return path.map(([layer, channel, label]) => conceptName(layer, channel, label)).join(" → ");
}

function nodeElement(n, { selected, pending, onClick }) {
  const { data } = n;
  const bar = Math.max(0, Math.min(1, data.share ?? 0)) * (NODE.width - 12);
  const g = svgElement("g", { class: "cs-node", transform: `translate(${n.left},${n.top})` }, [
    svgElement("rect", { class: "cs-box", width: NODE.width, height: NODE.height, rx: 4 }),
    svgElement("title", {}, [conceptName(data.layer, data.channel, data.label)]),
    svgElement("text", { x: 6, y: 14 }, [data.label || conceptLabel(data.layer, data.channel)]),
    svgElement("text", { x: 6, y: 27 }, [(data.label ? `${conceptLabel(data.layer, data.channel)} · ` : "") + formatShare(data.share)]),
    svgElement("rect", { x: 6, y: 30, width: bar, height: 3, fill: "#e53935" }),
  ]);
  if (data.children === null) g.append(svgElement("text", { x: NODE.width - 12, y: 14 }, ["+"]));
  g.classList.toggle("cs-selected", n.key === selected);
  g.classList.toggle("cs-pending", n.key === pending);
  g.dataset.path = n.key;
  g.dataset.expanded = String(data.children !== null);
  g.addEventListener("click", () => onClick(data.path));
  focusable(g);
  return g;
}

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   tree: Record<string, any>, selected: [string, number][], image_png: DataView, heatmap_png: DataView,
 *   top: number, busy: boolean, error: string,
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const root = element("div", { className: "cs-view cs-tree" });
  const svg = svgElement("svg", { class: "cs-svg" });
  svg.addEventListener("keydown", itemKeys(svg, ".cs-node"));
  const label = element("div", { className: "cs-label" });
  const canvas = element("canvas", { className: "cs-canvas" });
  canvas.dataset.frame = "0";
  root.append(
    style(CSS),
    element("div", { className: "cs-body" }, [svg, element("div", { className: "cs-detail" }, [label, canvas])]),
  );
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);
  const decode = createDecoder(status);
  const ctx = canvas.getContext("2d");
  let pending = null;
  let frame = 0;

  function expand(path) {
    pending = pathKey(path);
    renderTree();
    channel.request("expand", { path });
  }

  function renderTree() {
    const data = model.get("tree");
    if (!data?.path) {
      svg.replaceChildren();
      status.show("select a concept to see what it is made of");
      return;
    }
    status.show("");
    const layout = layoutTree(data);
    const selected = pathKey(model.get("selected") ?? []);
    const focused = svg.contains(document.activeElement) ? document.activeElement?.getAttribute("data-path") : null;
    svg.setAttribute("width", layout.width + 2);
    svg.setAttribute("height", layout.height + 2);
    svg.replaceChildren(
      ...layout.links.map((l) => svgElement("path", { class: "cs-link", d: l.d })),
      ...layout.nodes.map((n) => nodeElement(n, { selected, pending, onClick: expand })),
    );
    if (focused) [...svg.querySelectorAll(".cs-node")].find((g) => g.getAttribute("data-path") === focused)?.focus();
  }

  // The label is taken with the heatmap it belongs to, so the detail never mixes two nodes.
  async function renderDetail() {
    const [imagePng, heatmapPng, path] = [model.get("image_png"), model.get("heatmap_png"), model.get("selected")];
    if (!byteLength(imagePng) || !byteLength(heatmapPng)) return;
    await decode([imagePng, heatmapPng], ([image, heatmap]) => {
      const scale = displayScale(image.width, DETAIL_WIDTH);
      Object.assign(canvas, { width: image.width * scale, height: image.height * scale });
      drawComposite(ctx, { image, heatmap, opacity: 0.6, scale, marker: null });
      label.textContent = pathLabel(path ?? []);
      frame += 1;
      canvas.dataset.frame = String(frame);
      canvas.dataset.shown = label.textContent;
    });
  }

  function onMessage(msg) {
    if (!channel.accept(msg)) return;
    pending = null;
    renderTree();
  }

  const rerenderTree = coalesce(renderTree);
  const rerenderDetail = coalesce(renderDetail);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [
    ["msg:custom", onMessage],
    ["change:tree", rerenderTree],
    ["change:selected", rerenderTree],
    ["change:selected", rerenderDetail],
    ["change:image_png", rerenderDetail],
    ["change:heatmap_png", rerenderDetail],
  ];
  const unlisten = listen(model, listeners);
  renderTree();
  renderDetail();
  return () => {
    unlisten();
    channel.dispose();
  };
}

export default { render };
