// @ts-check
// NeuronGallery: reference samples of a concept (RelMax / ActMax, cropped or whole), paged.
// Mode, crop and page changes send "query"; clicking a reference sends "pick".
import { createChannel } from "./lib/channel.js";
import { element, style } from "./lib/dom.js";
import { conceptName, formatRelevance, formatShare } from "./lib/format.js";
import { createUrlPool } from "./lib/images.js";
import { focusable, itemKeys } from "./lib/keys.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-gallery { display: flex; flex-direction: column; gap: 4px; max-width: 330px; }
.cs-gallery .cs-controls { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.cs-gallery .cs-grid { display: grid; grid-template-columns: repeat(4, 76px); gap: 6px; }
.cs-gallery figure { margin: 0; cursor: pointer; text-align: center; font-size: 11px; }
.cs-gallery figure img { width: 72px; height: 72px; object-fit: contain; image-rendering: pixelated;
  border: 2px solid transparent; background: var(--cs-muted-bg); }
.cs-gallery figure:hover img { border-color: var(--cs-accent); }
.cs-gallery .cs-note, .cs-gallery .cs-classes { color: var(--cs-fg-muted); }
`;
const MODES = [
  ["relevance", "RelMax"],
  ["activation", "ActMax"],
];

/** "page 2 of 5" (pages count from 0 in the model). */
export function pageText(page, pages) {
  return pages > 0 ? `page ${page + 1} of ${pages}` : "no pages";
}

/** The classes a concept is most relevant for, e.g. "for: red circle 61.0 %, blue square 20.3 %". */
export function classesText(classes) {
  return classes.length ? `for: ${classes.map((c) => `${c.name} ${formatShare(c.share)}`).join(", ")}` : "";
}

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   concept: { layer?: string, channel?: number, label?: string }, mode: "relevance" | "activation", crop: boolean,
 *   page: number, pages: number, page_size: number, note: string, busy: boolean, error: string,
 *   references: { index: number, score: number, image: DataView }[], classes: { name: string, share: number }[],
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const root = element("div", { className: "cs-view cs-gallery" });
  const title = element("div", { className: "cs-title" });
  const mode = element(
    "select",
    { className: "cs-mode" },
    MODES.map(([value, text]) => element("option", { value, textContent: text })),
  );
  const crop = element("input", { type: "checkbox", className: "cs-crop" });
  const prev = element("button", { type: "button", className: "cs-prev", textContent: "‹" });
  const next = element("button", { type: "button", className: "cs-next", textContent: "›" });
  const pageLabel = element("span", { className: "cs-page" });
  const classes = element("div", { className: "cs-classes" });
  const note = element("div", { className: "cs-note" });
  const grid = element("div", { className: "cs-grid" });
  grid.addEventListener("keydown", itemKeys(grid, "figure"));
  root.append(
    style(CSS),
    title,
    element("div", { className: "cs-controls" }, [
      mode,
      element("label", {}, [crop, " crop"]),
      element("span", {}, [prev, " ", pageLabel, " ", next]),
    ]),
    classes,
    note,
    grid,
  );
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);
  const urls = createUrlPool();

  function renderAll() {
    const concept = model.get("concept");
    const [page, pages] = [model.get("page"), model.get("pages")];
    title.textContent = concept?.layer
      ? `references of ${conceptName(concept.layer, concept.channel, concept.label)}`
      : "no concept selected";
    mode.value = model.get("mode");
    crop.checked = model.get("crop");
    pageLabel.textContent = pageText(page, pages);
    prev.disabled = page <= 0;
    next.disabled = page >= pages - 1;
    classes.textContent = classesText(model.get("classes"));
    note.textContent = model.get("note");
    urls.release();
    grid.replaceChildren(
      ...model.get("references").map((r) => {
        const figure = element("figure", { title: `dataset item ${r.index}: click to explain it` }, [
          element("img", { src: urls.url(r.image), alt: `reference ${r.index}` }),
          element("figcaption", { textContent: `#${r.index} · ${formatRelevance(r.score)}` }),
        ]);
        figure.dataset.index = String(r.index);
        figure.addEventListener("click", () => channel.request("pick", { index: r.index }));
        focusable(figure);
        return figure;
      }),
    );
  }

  const query = (changes) => () =>
    channel.request("query", { mode: mode.value, crop: crop.checked, page: model.get("page"), ...changes() });
  mode.addEventListener("change", query(() => ({ page: 0 })));
  crop.addEventListener("change", query(() => ({ page: 0 })));
  prev.addEventListener("click", query(() => ({ page: model.get("page") - 1 })));
  next.addEventListener("click", query(() => ({ page: model.get("page") + 1 })));

  const onMessage = (msg) => channel.accept(msg);
  const rerender = coalesce(renderAll);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [["msg:custom", onMessage]];
  for (const name of ["concept", "mode", "crop", "page", "pages", "references", "classes", "note"]) {
    listeners.push([`change:${name}`, rerender]);
  }
  const unlisten = listen(model, listeners);
  renderAll();
  return () => {
    unlisten();
    channel.dispose();
    urls.release();
  };
}

export default { render };
