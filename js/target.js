// @ts-check
// TargetView: the prediction's top classes (bars) and the class to explain (click a bar or choose in
// the dropdown; sends "target"), optionally rather than another class (the "rather than" dropdown;
// sends "contrast"). For a dense output (segmenter, detector) also the predicted segments or detections
// (click one to explain it alone; sends "segment").
import { createChannel } from "./lib/channel.js";
import { element, fillClassSelect, style } from "./lib/dom.js";
import { formatShare } from "./lib/format.js";
import { focusable, itemKeys } from "./lib/keys.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-target { display: flex; flex-direction: column; gap: 4px; }
.cs-target .cs-top { display: flex; gap: 8px; flex-wrap: wrap; }
.cs-target .cs-class { display: flex; flex-direction: column; gap: 2px; padding: 2px 6px; border-radius: 3px;
  cursor: pointer; border: 1px solid var(--cs-border); min-width: 90px; }
.cs-target .cs-class[aria-pressed="true"] { background: var(--cs-selected-bg); border-color: var(--cs-selected); }
.cs-target .cs-class.cs-versus { background: var(--cs-versus-bg); border-color: var(--cs-accent); }
.cs-target .cs-choice { display: flex; gap: 12px; flex-wrap: wrap; }
.cs-target .cs-bar { height: 6px; background: var(--cs-muted-bg); }
.cs-target .cs-bar span { display: block; height: 100%; background: var(--cs-accent); }
.cs-target .cs-segments { display: flex; gap: 4px; flex-wrap: wrap; align-items: center; }
.cs-target .cs-segment { padding: 2px 6px; border-radius: 3px; cursor: pointer; border: 1px solid var(--cs-border);
  background: none; color: inherit; font: inherit; }
.cs-target .cs-segment[aria-pressed="true"] { background: var(--cs-selected-bg); border-color: var(--cs-selected); }
`;

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   classes: string[], predictions: { index: number, name: string, probability: number }[],
 *   target: number, versus: number, predicted: number, k: number, busy: boolean, error: string,
 *   segments: { index: number, name: string, cls: number, box: number[], score: number }[], segment: number,
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const root = element("div", { className: "cs-view cs-target" });
  const select = element("select", { className: "cs-select cs-class-select" });
  const versusSelect = element("select", { className: "cs-select cs-versus-select" });
  const top = element("div", { className: "cs-top" });
  const segments = element("div", { className: "cs-segments" });
  const versusLabel = element("label", {}, ["rather than ", versusSelect]);
  const choice = element("div", { className: "cs-choice" }, [element("label", {}, ["explain class ", select]), versusLabel]);
  root.append(style(CSS), choice, top, segments);
  el.append(root);
  const status = createStatus(root);
  const channel = createChannel(model, status);

  const versusOf = () => model.get("versus") ?? -1;
  /** Explain `target`, rather than `versus` unless that is -1 (or the target itself). */
  function choose(target, versus = versusOf()) {
    if (versus === -1 || versus === target) channel.request("target", { target });
    else channel.request("contrast", { target, versus });
  }

  /** The input's segments (or detections) as buttons; the explained one pressed. */
  function renderSegments() {
    const list = model.get("segments") ?? [];
    const chosen = model.get("segment");
    segments.hidden = list.length === 0;
    versusLabel.hidden = list.length > 0; // a contrast of two classes explains class logits, not a region
    segments.replaceChildren(
      element("span", { textContent: "explain segment " }),
      ...list.map((s) => {
        const [x0, y0, x1, y1] = s.box;
        const button = element("button", {
          type: "button", className: "cs-segment", textContent: `${s.name} ${formatShare(s.score)}`,
          title: `explain this ${s.name} alone: box (${x0}, ${y0})–(${x1}, ${y1})`,
        });
        button.dataset.index = String(s.index);
        button.setAttribute("aria-pressed", String(s.index === chosen));
        button.addEventListener("click", () => channel.request("segment", { index: s.index }));
        return button;
      }),
    );
  }

  function renderAll() {
    renderSegments();
    const [target, predicted, versus] = [model.get("target"), model.get("predicted"), versusOf()];
    fillClassSelect(select, model.get("classes"), predicted, target);
    versusSelect.replaceChildren(
      element("option", { value: "-1", textContent: "— (no contrast)" }),
      ...model.get("classes").map((name, i) => element("option", { value: String(i), textContent: name, disabled: i === target })),
    );
    versusSelect.value = String(versus);
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
        item.classList.toggle("cs-versus", p.index === versus);
        item.addEventListener("click", () => choose(p.index));
        focusable(item);
        return item;
      }),
    );
  }

  select.addEventListener("change", () => choose(Number(select.value)));
  top.addEventListener("keydown", itemKeys(top, ".cs-class"));
  versusSelect.addEventListener("change", () => choose(model.get("target"), Number(versusSelect.value)));
  const rerender = coalesce(renderAll);
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [["msg:custom", (msg) => channel.accept(msg)]];
  for (const name of ["classes", "predictions", "target", "versus", "predicted", "segments", "segment"]) {
    listeners.push([`change:${name}`, rerender]);
  }
  const unlisten = listen(model, listeners);
  renderAll();
  return () => {
    unlisten();
    channel.dispose();
  };
}

export default { render };
