// @ts-check
// SemanticSearch: concepts found by text (similarity, label, scores, reference thumbnails) and a class audit.
// Enter or the button sends "search"; the vocabulary field sends "vocabulary"; clicking a hit or an audited
// concept sends "select" (highlighted at once); the audit button sends "audit".
import { createChannel } from "./lib/channel.js";
import { element, style } from "./lib/dom.js";
import { conceptLabel, formatShare } from "./lib/format.js";
import { createUrlPool } from "./lib/images.js";
import { focusable, itemKeys } from "./lib/keys.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-search { display: flex; flex-direction: column; gap: 6px; max-width: 900px; }
.cs-search .cs-form, .cs-search .cs-audit-form { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.cs-search .cs-query { width: 240px; }
.cs-search .cs-vocabulary, .cs-search .cs-valid, .cs-search .cs-spurious { width: 220px; }
.cs-search table { border-collapse: collapse; }
.cs-search th { text-align: left; font-weight: normal; color: var(--cs-fg-muted); padding: 0 6px; }
.cs-search td { padding: 1px 6px; white-space: nowrap; }
.cs-search tbody tr { cursor: pointer; }
.cs-search tbody tr:hover { background: var(--cs-muted-bg); }
.cs-search tbody tr[aria-selected="true"] { background: var(--cs-selected-bg); }
.cs-search td.cs-num { text-align: right; font-variant-numeric: tabular-nums; }
.cs-search .cs-refs img { width: 32px; height: 32px; object-fit: contain; image-rendering: pixelated;
  background: var(--cs-muted-bg); margin-right: 2px; vertical-align: middle; }
.cs-search .cs-audit-title { font-weight: bold; margin-top: 6px; }
.cs-search .cs-audit-layer h4 { margin: 6px 0 2px; font-size: 13px; font-weight: normal; }
.cs-search .cs-bar { display: inline-block; width: 120px; height: 8px; background: var(--cs-muted-bg); }
.cs-search .cs-bar span { display: block; height: 100%; }
`;
/** Bar colours of the audit verdicts. */
export const VERDICT_COLORS = { valid: "#43a047", spurious: "#e53935", unexpected: "#fb8c00" };
const SCORES = [
  ["clarity", "clarity", "how alike the concept's references are"],
  ["polysemanticity", "polysem.", "how clearly its references split into two groups"],
  ["redundancy", "redundancy", "its highest similarity to another concept of the layer"],
];

/** The non-empty, trimmed items of a comma-separated list, e.g. "red, , blue " -> ["red", "blue"]. */
export function splitList(text) {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A score with `digits` decimals; "–" for missing (undefined) values. */
export function formatScore(value, digits = 2) {
  return value == null || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}

/** Where the class's relevance goes in one layer, e.g.
 * "features.15 — class relevance: 12.0 % spurious · 80.0 % valid · 8.0 % unexpected". */
export function auditSummary(layerAudit) {
  const { layer, spurious_share: s, valid_share: v, unexpected_share: u } = layerAudit;
  return `${layer} — class relevance: ${formatShare(s)} spurious · ${formatShare(v)} valid · ${formatShare(u)} unexpected`;
}

/** The line above the hits, e.g. '3 concepts for "red" in features.15'. */
export function hitsSummary(hits, query, layer) {
  if (!query) return "type a description to find the concepts that match it";
  return `${hits.length} concept${hits.length === 1 ? "" : "s"} for "${query}" in ${layer || "all layers"}`;
}

const cell = (text, className = "") => element("td", { className, textContent: text });
const auditHeader = () =>
  element("thead", {}, [
    element(
      "tr",
      {},
      ["concept", "relevance share", "", "verdict", "best match"].map((text) => element("th", { textContent: text })),
    ),
  ]);
const sameConcept = (a, b) => a?.layer === b?.layer && a?.channel === b?.channel;

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   layers: string[], layer: string, query: string, k: number, vocabulary: string[], classes: string[],
 *   hits: Record<string, any>[], thumbnails: Record<string, { index: number, image: DataView }[]>,
 *   selected: { layer?: string, channel?: number }, audit: Record<string, any>, busy: boolean, error: string,
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const root = element("div", { className: "cs-view cs-search" });
  const query = element("input", { type: "search", className: "cs-query", placeholder: "search concepts, e.g. red" });
  const layer = element("select", { className: "cs-layer" });
  const go = element("button", { type: "button", className: "cs-go", textContent: "search" });
  const vocabulary = element("input", { type: "text", className: "cs-vocabulary", placeholder: "labels, comma separated" });
  const summary = element("div", { className: "cs-summary" });
  const hits = element("tbody");
  hits.addEventListener("keydown", itemKeys(hits, "tr"));
  const cls = element("select", { className: "cs-class" });
  const valid = element("input", { type: "text", className: "cs-valid", placeholder: "valid, comma separated" });
  const spurious = element("input", { type: "text", className: "cs-spurious", placeholder: "spurious, comma separated" });
  const runAudit = element("button", { type: "button", className: "cs-run-audit", textContent: "audit" });
  const audit = element("div", { className: "cs-audit" });
  const header = [
    ["concept"],
    ["similarity", "cosine similarity of the concept and the query"],
    ["label"],
    ...SCORES.map(([, text, title]) => [text, title]),
    ["references"],
  ];
  root.append(
    style(CSS),
    element("div", { className: "cs-form" }, [query, layer, go, element("label", {}, ["vocabulary ", vocabulary])]),
    summary,
    element("table", { className: "cs-hits" }, [
      element("thead", {}, [element("tr", {}, header.map(([text, title = ""]) => element("th", { textContent: text, title })))]),
      hits,
    ]),
    element("div", { className: "cs-audit-title", textContent: "audit a class" }),
    element("div", { className: "cs-audit-form" }, [
      element("label", {}, ["class ", cls]),
      valid,
      spurious,
      runAudit,
    ]),
    audit,
  );
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);
  const hitUrls = createUrlPool();
  let pending = null; // the concept clicked but not yet confirmed by Python
  let pendingId = null; // and the id of its "select" request

  function select(c) {
    pending = { layer: c.layer, channel: c.channel };
    renderSelection();
    pendingId = channel.request("select", pending);
  }

  function conceptRow(c, cells) {
    const row = element("tr", {}, cells);
    Object.assign(row.dataset, { layer: c.layer, channel: String(c.channel) });
    row.addEventListener("click", () => select(c));
    focusable(row);
    return row;
  }

  function renderChoices() {
    layer.replaceChildren(
      element("option", { value: "", textContent: "all layers" }),
      ...model.get("layers").map((name) => element("option", { value: name, textContent: name })),
    );
    layer.value = model.get("layer");
    const chosen = cls.value;
    cls.replaceChildren(...model.get("classes").map((name) => element("option", { value: name, textContent: name })));
    if (chosen) cls.value = chosen;
    vocabulary.value = model.get("vocabulary").join(", ");
  }

  function renderHits() {
    const [found, text] = [model.get("hits"), model.get("query")];
    if (document.activeElement !== query) query.value = text;
    layer.value = model.get("layer");
    summary.textContent = hitsSummary(found, text, model.get("layer"));
    hits.replaceChildren(
      ...found.map((h) =>
        conceptRow(h, [
          cell(conceptLabel(h.layer, h.channel), "cs-name"),
          cell(formatScore(h.score, 3), "cs-num cs-score"),
          cell(h.label || "–", "cs-label"),
          ...SCORES.map(([name]) => cell(formatScore(h[name]), `cs-num cs-${name}`)),
          cell("", "cs-refs"),
        ]),
      ),
    );
    renderThumbnails();
    renderSelection();
  }

  function renderThumbnails() {
    hitUrls.release();
    const thumbnails = model.get("thumbnails");
    for (const row of hits.children) {
      const refs = thumbnails[`${row.dataset.layer}:${row.dataset.channel}`] ?? [];
      row.querySelector(".cs-refs").replaceChildren(
        ...refs.map((r) => element("img", { src: hitUrls.url(r.image), alt: `reference ${r.index}`, title: `#${r.index}` })),
      );
    }
  }

  function renderAudit() {
    const result = model.get("audit");
    if (!result?.layers) {
      audit.replaceChildren();
      return;
    }
    const described = [...result.valid.map((t) => `valid: ${t}`), ...result.spurious.map((t) => `spurious: ${t}`)];
    audit.replaceChildren(
      element("div", { className: "cs-audit-class", textContent: `class ${result.cls} (${described.join("; ")})` }),
      ...result.layers.map((l) => {
        const largest = Math.max(...l.concepts.map((c) => Math.abs(c.share ?? 0)), 1e-12);
        const rows = l.concepts.map((c) => {
          const bar = element("span");
          bar.style.width = `${(Math.max(0, c.share ?? 0) / largest) * 100}%`;
          bar.style.background = VERDICT_COLORS[c.verdict];
          const row = conceptRow(c, [
            cell(conceptLabel(c.layer, c.channel), "cs-name"),
            element("td", {}, [element("span", { className: "cs-bar" }, [bar])]),
            cell(formatShare(c.share), "cs-num cs-share"),
            cell(c.verdict, "cs-verdict"),
            cell(c.match ?? "–", "cs-match"),
          ]);
          row.dataset.verdict = c.verdict;
          return row;
        });
        const section = element("div", { className: "cs-audit-layer" }, [
          element("h4", { textContent: auditSummary(l) }),
          element("table", {}, [auditHeader(), element("tbody", {}, rows)]),
        ]);
        section.dataset.layer = l.layer;
        return section;
      }),
    );
    renderSelection();
  }

  function renderSelection() {
    const selected = pending ?? model.get("selected");
    for (const row of root.querySelectorAll("tbody tr")) {
      const c = { layer: row.dataset.layer, channel: Number(row.dataset.channel) };
      row.setAttribute("aria-selected", String(sameConcept(c, selected)));
    }
  }

  function onMessage(msg) {
    if (!channel.accept(msg) || msg.id !== pendingId) return;
    pending = null; // Python answered the click: "selected" (the trait follows) or an error
    renderSelection();
  }

  const search = () => channel.request("search", { query: query.value, layer: layer.value });
  query.addEventListener("keydown", (event) => {
    if (event.key === "Enter") search();
  });
  go.addEventListener("click", search);
  vocabulary.addEventListener("change", () =>
    channel.request("vocabulary", { vocabulary: splitList(vocabulary.value) }),
  );
  runAudit.addEventListener("click", () =>
    channel.request("audit", {
      cls: cls.value,
      valid: splitList(valid.value),
      spurious: splitList(spurious.value),
      layer: layer.value,
    }),
  );

  const rerenderChoices = coalesce(renderChoices);
  const rerenderHits = coalesce(renderHits);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [
    ["msg:custom", onMessage],
    ["change:layers", rerenderChoices],
    ["change:classes", rerenderChoices],
    ["change:vocabulary", rerenderChoices],
    ["change:hits", rerenderHits],
    ["change:query", rerenderHits],
    ["change:layer", rerenderHits],
    ["change:thumbnails", coalesce(renderThumbnails)],
    ["change:audit", coalesce(renderAudit)],
    ["change:selected", renderSelection],
  ];
  const unlisten = listen(model, listeners);
  renderChoices();
  renderHits();
  renderAudit();
  return () => {
    unlisten();
    channel.dispose();
    hitUrls.release();
  };
}

export default { render };
