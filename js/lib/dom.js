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

// Colours follow JupyterLab's (and Notebook 7's) theme variables, with light fallbacks elsewhere; selections mix the
// accent into the background, so they keep their contrast in light and dark themes alike.
const BASE_CSS = `
.cs-view {
  --cs-fg: var(--jp-ui-font-color1, #212121); --cs-fg-muted: var(--jp-ui-font-color2, #455a64);
  --cs-bg: var(--jp-layout-color1, #ffffff); --cs-muted-bg: var(--jp-layout-color3, #eceff1);
  --cs-border: var(--jp-border-color1, #cfd8dc); --cs-border-strong: var(--jp-border-color0, #90a4ae);
  --cs-accent: var(--jp-brand-color1, #1e88e5); --cs-error: var(--jp-error-color1, #c62828);
  --cs-selected: #ef6c00; --cs-selected-bg: color-mix(in srgb, #ef6c00 28%, var(--cs-bg));
  --cs-versus-bg: color-mix(in srgb, #1e88e5 25%, var(--cs-bg));
  font: 13px var(--jp-ui-font-family, sans-serif); position: relative; color: var(--cs-fg);
}
.cs-view select, .cs-view button, .cs-view input { color: inherit; background: var(--cs-bg); border: 1px solid var(--cs-border); }
.cs-view [hidden] { display: none !important; }
.cs-view :focus-visible { outline: 2px solid var(--cs-accent); outline-offset: 1px; }
.cs-view .cs-error { color: var(--cs-error); white-space: pre-wrap; }
.cs-view .cs-busy { position: absolute; top: 2px; right: 2px; width: 12px; height: 12px; border-radius: 50%;
  border: 2px solid var(--cs-border-strong); border-top-color: transparent; animation: cs-spin 0.8s linear infinite; }
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
