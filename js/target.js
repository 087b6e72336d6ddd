// @ts-check
// TargetView: the prediction's top classes (bars) and the class to explain (click a bar or choose in
// the dropdown; sends "target").
import { createChannel } from "./lib/channel.js";
import { element, fillClassSelect, style } from "./lib/dom.js";
import { formatShare } from "./lib/format.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-target { display: flex; flex-direction: column; gap: 4px; }
.cs-target .cs-top { display: flex; gap: 8px; flex-wrap: wrap; }
.cs-target .cs-class { display: flex; flex-direction: column; gap: 2px; padding: 2px 6px; border-radius: 3px;
  cursor: pointer; border: 1px solid #cfd8dc; min-width: 90px; }
.cs-target .cs-class[aria-pressed="true"] { background: #ffe0b2; border-color: #ef6c00; }
.cs-target .cs-bar { height: 6px; background: #eceff1; }
.cs-target .cs-bar span { display: block; height: 100%; background: #1e88e5; }
`;

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   classes: string[], predictions: { index: number, name: string, probability: number }[],
 *   target: number, predicted: number, k: number, busy: boolean, error: string,
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const root = element("div", { className: "cs-view cs-target" });
  const select = element("select", { className: "cs-select" });
  const top = element("div", { className: "cs-top" });
  root.append(style(CSS), element("label", {}, ["explain class ", select]), top);
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);

  const choose = (index) => channel.request("target", { target: index });

  function renderAll() {
    const [target, predicted] = [model.get("target"), model.get("predicted")];
    fillClassSelect(select, model.get("classes"), predicted, target);
    top.replaceChildren(
      ...model.get("predictions").map((p) => {
        const bar = element("span");
        bar.style.width = `${p.probability * 100}%`;
        const item = element("div", { className: "cs-class", title: "explain this class" }, [
          element("span", { textContent: `${p.name} ${formatShare(p.probability)}` }),
          element("div", { className: "cs-bar" }, [bar]),
        ]);
        item.dataset.index = String(p.index);
        item.setAttribute("aria-pressed", String(p.index === target));
        item.addEventListener("click", () => choose(p.index));
        return item;
      }),
    );
  }

  select.addEventListener("change", () => choose(Number(select.value)));
  const rerender = coalesce(renderAll);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [["msg:custom", (msg) => channel.accept(msg)]];
  for (const name of ["classes", "predictions", "target", "predicted"]) listeners.push([`change:${name}`, rerender]);
  const unlisten = listen(model, listeners);
  renderAll();
  return () => {
    unlisten();
    channel.dispose();
  };
}

export default { render };
