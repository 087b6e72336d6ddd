// @ts-check
// CompareView: attribution methods side by side on one image. Each tile shows a method's heatmap over the image and,
// when ground truth is known, its localisation score; clicking a tile enlarges it with all its scores (`selected`);
// choosing another class asks Python to recompute every method ("target"; the latest choice wins).
import { createChannel } from "./lib/channel.js";
import { element, fillClassSelect, style } from "./lib/dom.js";
import { listen } from "./lib/listen.js";
import { createUrlPool } from "./lib/images.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-compare { display: flex; flex-direction: column; gap: 6px; max-width: 860px; }
.cs-compare .cs-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 6px; }
.cs-compare .cs-tile { border: 1px solid var(--cs-border); border-radius: 3px; padding: 3px; cursor: pointer; }
.cs-compare .cs-tile[aria-pressed="true"] { border-color: var(--cs-selected); background: var(--cs-selected-bg); }
.cs-compare .cs-tile img, .cs-compare .cs-detail img { width: 100%; image-rendering: pixelated; display: block; }
.cs-compare .cs-tile .cs-pending { aspect-ratio: 1; background: var(--cs-muted-bg); }
.cs-compare .cs-name { font-weight: bold; font-size: 12px; overflow-wrap: anywhere; }
.cs-compare .cs-score, .cs-compare .cs-tile-error { font-size: 11px; color: var(--cs-fg-muted); }
.cs-compare .cs-tile-error { color: var(--cs-error); }
.cs-compare .cs-detail { display: flex; gap: 12px; align-items: flex-start; }
.cs-compare .cs-detail img { width: 256px; }
.cs-compare .cs-metrics td { padding: 0 8px 0 0; }
`;

/** The number shown for a score: two decimals, "–" when unknown. */
export function formatScore(value) {
  return value == null || !Number.isFinite(value) ? "–" : Number(value).toFixed(2);
}

function render({ model, el }) {
  const select = element("select", { className: "cs-select" });
  const grid = element("div", { className: "cs-grid" });
  const detail = element("div", { className: "cs-detail" });
  const root = element("div", { className: "cs-view cs-compare" }, [
    element("label", {}, ["explain class ", select]),
    grid,
    detail,
  ]);
  root.prepend(style(CSS));
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);
  const urls = createUrlPool();

  const headline = () => model.get("metrics")[0];

  function tileNode(tile, url) {
    const score = tile.error
      ? element("div", { className: "cs-tile-error", textContent: tile.error })
      : element("div", {
          className: "cs-score",
          textContent: model.get("graded") ? `${headline()} ${formatScore(tile.scores[headline()])}` : "",
        });
    const picture = url ? element("img", { src: url, alt: tile.method }) : element("div", { className: "cs-pending" });
    const node = element("div", { className: "cs-tile", title: `${tile.family} · ${tile.library}` }, [
      picture,
      element("div", { className: "cs-name", textContent: tile.method }),
      score,
    ]);
    node.dataset.method = tile.method;
    node.dataset.ready = String(Boolean(url));
    node.setAttribute("aria-pressed", String(tile.method === model.get("selected")));
    node.addEventListener("click", () => {
      model.set("selected", tile.method === model.get("selected") ? "" : tile.method);
      model.save_changes();
    });
    return node;
  }

  function detailNodes(tile, url) {
    const rows = model.get("metrics").map((metric) => {
      const row = element("tr", {}, [
        element("td", { textContent: metric }),
        element("td", { textContent: formatScore(tile.scores[metric]) }),
      ]);
      row.dataset.metric = metric;
      row.dataset.value = String(tile.scores[metric] ?? "");
      return row;
    });
    const seconds = tile.seconds == null ? "computing…" : `${tile.seconds.toFixed(2)} s`;
    const info = element("div", {}, [
      element("div", { className: "cs-name", textContent: tile.method }),
      element("div", { textContent: `${tile.family} · computed by ${tile.library} · ${seconds}` }),
      model.get("graded")
        ? element("table", { className: "cs-metrics" }, [element("tbody", {}, rows)])
        : element("div", { textContent: "no ground truth for this class" }),
    ]);
    return [url ? element("img", { src: url, alt: tile.method }) : element("div", { className: "cs-pending" }), info];
  }

  function renderAll() {
    const [target, predicted] = [model.get("target"), model.get("predicted")];
    fillClassSelect(select, model.get("classes"), predicted, target);
    urls.release();
    const tiles = model.get("tiles");
    const shown = tiles.map((tile) => [tile, tile.png?.byteLength ? urls.url(tile.png) : null]);
    grid.replaceChildren(...shown.map(([tile, url]) => tileNode(tile, url)));
    const chosen = shown.find(([tile]) => tile.method === model.get("selected"));
    detail.replaceChildren(...(chosen ? detailNodes(...chosen) : []));
    detail.dataset.method = chosen ? chosen[0].method : "";
    root.dataset.ready = String(tiles.length > 0 && tiles.every((t) => t.png?.byteLength || t.error));
  }

  select.addEventListener("change", () => channel.request("target", { target: Number(select.value) }));
  const rerender = coalesce(renderAll);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [["msg:custom", (msg) => channel.accept(msg)]];
  for (const name of ["classes", "target", "predicted", "tiles", "selected", "graded", "metrics"]) {
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
