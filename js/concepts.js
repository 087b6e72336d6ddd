// @ts-check
// ConceptList: the top concepts of a layer with share bars and conditional-heatmap thumbnails.
// Choosing a layer sends "layer"; clicking a concept sends "select" (it is highlighted at once).
import { createChannel } from "./lib/channel.js";
import { element, style } from "./lib/dom.js";
import { conceptLabel, conceptName, formatRelevance, formatShare } from "./lib/format.js";
import { createUrlPool } from "./lib/images.js";
import { focusable, itemKeys } from "./lib/keys.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-concepts { display: flex; flex-direction: column; gap: 4px; min-width: 260px; }
.cs-concepts ol { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 2px; }
.cs-concepts li { display: flex; align-items: center; gap: 6px; padding: 2px 4px; cursor: pointer; border-radius: 3px; }
.cs-concepts li:hover { background: var(--cs-muted-bg); }
.cs-concepts li[aria-selected="true"] { background: var(--cs-selected-bg); }
.cs-concepts .cs-thumb { width: 56px; height: 56px; object-fit: contain; image-rendering: pixelated; }
.cs-concepts .cs-name { width: 130px; display: flex; flex-direction: column; overflow-wrap: anywhere; }
.cs-concepts .cs-id { font-size: 10px; color: var(--cs-fg-muted); }
.cs-concepts .cs-bar { width: 90px; height: 8px; background: var(--cs-muted-bg); }
.cs-concepts .cs-bar span { display: block; height: 100%; background: #e53935; }
.cs-concepts .cs-share { width: 52px; white-space: nowrap; text-align: right; }
.cs-concepts .cs-region { color: var(--cs-fg-muted); }
`;

/** Whether concept `c` is the selected one ({layer, channel} or {}). */
export function isSelected(c, selected) {
  return selected?.layer === c.layer && selected?.channel === c.channel;
}

/** The text describing the ranking: layer, and the region if one restricts it. */
export function rankingNote(layer, region) {
  const where = region?.length === 4 ? `inside region (${region[0]}, ${region[1]})–(${region[2]}, ${region[3]})` : "whole image";
  return `${layer || "…"}: ${where}`;
}

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   layers: string[], layer: string, k: number, region: number[], busy: boolean, error: string,
 *   concepts: { layer: string, channel: number, relevance: number, share: number, thumbnail: DataView,
 *     label?: string }[],
 *   selected: { layer?: string, channel?: number },
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const root = element("div", { className: "cs-view cs-concepts" });
  const layer = element("select", { className: "cs-layer" });
  const note = element("div", { className: "cs-region" });
  const list = element("ol", { className: "cs-list" });
  root.append(style(CSS), element("label", {}, ["layer ", layer]), note, list);
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);
  const urls = createUrlPool();
  let pending = null; // the selection clicked but not yet confirmed by Python

  function renderLayers() {
    layer.replaceChildren(...model.get("layers").map((name) => element("option", { value: name, textContent: name })));
    layer.value = model.get("layer");
  }

  // Rows (with new thumbnails) only when the concepts change; a selection only re-marks them.
  function renderList() {
    urls.release();
    const rows = model.get("concepts").map((c) => {
      const bar = element("span");
      bar.style.width = `${Math.max(0, Math.min(1, c.share)) * 100}%`;
      const row = element("li", { title: `relevance ${formatRelevance(c.relevance)}` }, [
        element("img", { className: "cs-thumb", src: urls.url(c.thumbnail), alt: conceptName(c.layer, c.channel, c.label) }),
        element("span", { className: "cs-name" }, c.label
          ? [element("span", { className: "cs-label", textContent: c.label }),
            element("span", { className: "cs-id", textContent: conceptLabel(c.layer, c.channel) })]
          : [conceptLabel(c.layer, c.channel)]),
        element("span", { className: "cs-bar" }, [bar]),
        element("span", { className: "cs-share", textContent: formatShare(c.share) }),
      ]);
      Object.assign(row.dataset, { layer: c.layer, channel: String(c.channel) });
      row.addEventListener("click", () => select(c));
      return focusable(row);
    });
    list.replaceChildren(...rows);
    note.textContent = rankingNote(model.get("layer"), model.get("region"));
    layer.value = model.get("layer");
    renderSelection();
  }

  function renderSelection() {
    const selected = pending ?? model.get("selected");
    model.get("concepts").forEach((c, i) => {
      list.children[i]?.setAttribute("aria-selected", String(isSelected(c, selected)));
    });
  }

  function select(c) {
    pending = { layer: c.layer, channel: c.channel };
    renderSelection();
    channel.request("select", pending);
  }

  function onMessage(msg) {
    if (!channel.accept(msg)) return;
    pending = null;
    renderSelection();
  }

  layer.addEventListener("change", () => channel.request("layer", { layer: layer.value }));
  list.addEventListener("keydown", itemKeys(list, "li"));
  const rerender = coalesce(renderList);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [
    ["msg:custom", onMessage],
    ["change:layers", renderLayers],
    ["change:layer", rerender],
    ["change:concepts", rerender],
    ["change:selected", renderSelection],
    ["change:region", rerender],
  ];
  const unlisten = listen(model, listeners);
  renderLayers();
  renderList();
  return () => {
    unlisten();
    channel.dispose();
    urls.release();
  };
}

export default { render };
