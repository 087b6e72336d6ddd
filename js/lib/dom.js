// @ts-check
// Building DOM nodes for the views.

/** An element with properties assigned and children appended. */
export function element(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes set and children appended. */
export function svgElement(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** A <style> element with the views' shared rules followed by `css`. */
export function style(css) {
  return element("style", { textContent: BASE_CSS + css });
}

const BASE_CSS = `
.cs-view { font: 13px sans-serif; position: relative; }
.cs-view .cs-error { color: #c62828; white-space: pre-wrap; }
.cs-view .cs-busy { position: absolute; top: 2px; right: 2px; width: 12px; height: 12px; border-radius: 50%;
  border: 2px solid #90a4ae; border-top-color: transparent; animation: cs-spin 0.8s linear infinite; }
.cs-view[data-busy="true"] .cs-status { opacity: 0.6; }
@keyframes cs-spin { to { transform: rotate(360deg); } }
`;

/**
 * Fill a class <select> with one option per class name, the predicted one marked, and select ``target``.
 * @param {HTMLSelectElement} select
 * @param {string[]} classes
 * @param {number} predicted
 * @param {number} target
 */
export function fillClassSelect(select, classes, predicted, target) {
  select.replaceChildren(
    ...classes.map((name, i) =>
      element("option", { value: String(i), textContent: i === predicted ? `${name} (predicted)` : name }),
    ),
  );
  select.value = String(target);
}
