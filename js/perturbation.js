// @ts-check
// PerturbationView: a slider removes the top x % of the pixels (or concepts) an explanation ranks most relevant;
// Python answers with the picture the model now sees and the class probabilities ("fraction"; the latest position
// wins). A method and a unit selector send "method" and "unit".
import { createChannel } from "./lib/channel.js";
import { element, style } from "./lib/dom.js";
import { formatShare } from "./lib/format.js";
import { createUrlPool } from "./lib/images.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-perturbation { display: flex; flex-direction: column; gap: 6px; max-width: 560px; }
.cs-perturbation .cs-controls { display: flex; gap: 12px; flex-wrap: wrap; align-items: center; }
.cs-perturbation .cs-body { display: flex; gap: 16px; align-items: flex-start; }
.cs-perturbation img { width: 256px; image-rendering: pixelated; display: block; }
.cs-perturbation .cs-slider { width: 256px; }
.cs-perturbation .cs-probabilities { display: flex; flex-direction: column; gap: 4px; min-width: 200px; }
.cs-perturbation .cs-bar { height: 8px; background: var(--cs-muted-bg); position: relative; }
.cs-perturbation .cs-bar .cs-now { display: block; height: 100%; background: var(--cs-accent); }
.cs-perturbation .cs-bar .cs-before { position: absolute; top: -2px; bottom: -2px; width: 2px; background: var(--cs-fg); }
.cs-perturbation .cs-target-class { font-weight: bold; }
`;

/** "removed 25 % of the pixels (1024 of 4096)". */
export function describeRemoved(fraction, removed, total, unit) {
  return `removed ${Math.round(fraction * 100)} % of the ${unit} (${removed} of ${total})`;
}

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   image_png: DataView | ArrayBuffer, classes: string[], target: number, methods: string[], method: string,
 *   unit: string, layer: string, fraction: number, removed: number, total: number,
 *   probabilities: { index: number, name: string, original: number, probability: number }[],
 *   busy: boolean, error: string,
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const slider = element("input", { type: "range", min: "0", max: "100", step: "1", className: "cs-slider" });
  const methodSelect = element("select", { className: "cs-select cs-method" });
  const unitSelect = element("select", { className: "cs-select cs-unit" }, [
    element("option", { value: "pixels", textContent: "pixels" }),
    element("option", { value: "concepts", textContent: "concepts" }),
  ]);
  const caption = element("div", { className: "cs-caption" });
  const picture = element("img", { alt: "the perturbed image" });
  const bars = element("div", { className: "cs-probabilities" });
  const root = element("div", { className: "cs-view cs-perturbation" }, [
    element("div", { className: "cs-controls" }, [
      element("label", {}, ["remove ", unitSelect]),
      element("label", {}, ["ranked by ", methodSelect]),
    ]),
    element("label", {}, ["most relevant first ", slider]),
    caption,
    element("div", { className: "cs-body" }, [picture, bars]),
  ]);
  root.prepend(style(CSS));
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);
  const urls = createUrlPool();

  function renderAll() {
    methodSelect.replaceChildren(
      ...model.get("methods").map((name) => element("option", { value: name, textContent: name })),
    );
    methodSelect.value = model.get("method");
    methodSelect.disabled = model.get("unit") === "concepts";
    unitSelect.value = model.get("unit");
    const unit = model.get("unit") === "concepts" ? `concepts of ${model.get("layer")}` : "pixels";
    caption.textContent = describeRemoved(model.get("fraction"), model.get("removed"), model.get("total"), unit);
    urls.release();
    const png = model.get("image_png");
    if (png?.byteLength) picture.src = urls.url(png);
    bars.replaceChildren(
      ...model.get("probabilities").map((p) => {
        const now = element("span", { className: "cs-now" });
        now.style.width = `${p.probability * 100}%`;
        const before = element("span", { className: "cs-before", title: `before: ${formatShare(p.original)}` });
        before.style.left = `${p.original * 100}%`;
        const row = element("div", { className: p.index === model.get("target") ? "cs-class cs-target-class" : "cs-class" }, [
          element("span", { textContent: `${p.name} ${formatShare(p.probability)}` }),
          element("div", { className: "cs-bar" }, [now, before]),
        ]);
        row.dataset.index = String(p.index);
        row.dataset.probability = String(p.probability);
        return row;
      }),
    );
  }

  slider.value = String(Math.round(model.get("fraction") * 100));
  slider.addEventListener("input", () => channel.request("fraction", { fraction: Number(slider.value) / 100 }));
  methodSelect.addEventListener("change", () => channel.request("method", { method: methodSelect.value }));
  unitSelect.addEventListener("change", () => channel.request("unit", { unit: unitSelect.value }));
  const rerender = coalesce(renderAll);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [["msg:custom", (msg) => channel.accept(msg)]];
  for (const name of ["image_png", "methods", "method", "unit", "layer", "fraction", "removed", "total", "probabilities"]) {
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
