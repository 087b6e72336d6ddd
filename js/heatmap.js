// HeatmapView: an image with its relevance heatmap overlaid; click a pixel to ask Python
// for its relevance (custom message "pixel" -> "pixel_result" | "error", latest request wins).
import { byteLength, decodePng, drawComposite } from "./lib/canvas.js";
import { formatRelevance } from "./lib/format.js";
import { clientToPixel, displayScale } from "./lib/geometry.js";
import { createRequests } from "./lib/requests.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-heatmap { display: inline-flex; flex-direction: column; gap: 4px; font: 13px sans-serif; }
.cs-heatmap canvas { cursor: crosshair; align-self: flex-start; }
.cs-heatmap .cs-controls { display: flex; gap: 12px; align-items: center; }
.cs-heatmap[data-busy="true"] .cs-status { opacity: 0.6; }
.cs-heatmap .cs-error { color: #c62828; white-space: pre-wrap; }
`;

function element(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function buildDom(el, colormaps) {
  const root = element("div", { className: "cs-heatmap" });
  const canvas = element("canvas", { className: "cs-canvas" });
  canvas.dataset.frame = "0";
  const opacity = element("input", { type: "range", min: "0", max: "1", step: "0.05", className: "cs-opacity" });
  const colormap = element(
    "select",
    { className: "cs-colormap" },
    colormaps.map((name) => element("option", { value: name, textContent: name })),
  );
  const controls = element("div", { className: "cs-controls" }, [
    element("label", {}, ["opacity ", opacity]),
    element("label", {}, ["colormap ", colormap]),
  ]);
  root.append(element("style", { textContent: CSS }), canvas, controls);
  el.append(root);
  return { root, canvas, opacity, colormap, status: createStatus(root) };
}

function render({ model, el }) {
  const ui = buildDom(el, model.get("colormaps"));
  const ctx = ui.canvas.getContext("2d");
  const state = { image: null, heatmap: null, marker: null, frame: 0 };
  const pixelRequests = createRequests();
  const decodes = createRequests("decode");

  function redraw() {
    if (!state.image) return;
    const scale = displayScale(state.image.width);
    const [w, h] = [state.image.width * scale, state.image.height * scale];
    if (ui.canvas.width !== w || ui.canvas.height !== h) Object.assign(ui.canvas, { width: w, height: h });
    drawComposite(ctx, { ...state, opacity: model.get("opacity"), scale });
    state.frame += 1;
    ui.canvas.dataset.frame = String(state.frame);
  }

  async function loadImages() {
    const [imagePng, heatmapPng] = [model.get("image_png"), model.get("heatmap_png")];
    if (!byteLength(imagePng)) return;
    const id = decodes.start();
    try {
      const [image, heatmap] = await Promise.all([
        decodePng(imagePng),
        byteLength(heatmapPng) ? decodePng(heatmapPng) : null,
      ]);
      if (!decodes.accept({ id })) return;
      Object.assign(state, { image, heatmap });
      redraw();
    } catch (err) {
      if (decodes.accept({ id })) ui.status.showError(`could not decode the image: ${err.message ?? err}`);
    }
  }

  function requestPixel({ x, y }) {
    const id = pixelRequests.start();
    ui.status.busy(true);
    ui.status.show(`computing relevance at (${x}, ${y})…`);
    model.send({ type: "pixel", id, x, y });
  }

  function onClick(event) {
    if (!state.image) return;
    const rect = ui.canvas.getBoundingClientRect();
    const pixel = clientToPixel(event.clientX, event.clientY, rect, state.image.width, state.image.height);
    if (pixel) requestPixel(pixel);
  }

  function onMessage(msg) {
    if (!pixelRequests.accept(msg)) return;
    ui.status.busy(false);
    if (msg.type === "pixel_result") {
      ui.status.clearError();
      ui.status.show(`relevance at (${msg.x}, ${msg.y}): ${formatRelevance(msg.value)}`);
      ui.status.line.dataset.value = String(msg.value);
      state.marker = { x: msg.x, y: msg.y };
      redraw();
    } else if (msg.type === "error") {
      ui.status.show("");
      ui.status.showError(msg.message);
    }
  }

  // A new heatmap (new relevance or colormap): redraw and refresh the value under the marker.
  function onHeatmapChange() {
    loadImages();
    if (state.marker) requestPixel(state.marker);
  }

  function syncControls() {
    ui.opacity.value = String(model.get("opacity"));
    ui.colormap.value = model.get("colormap");
  }

  const onOpacity = () => {
    syncControls();
    redraw();
  };
  ui.canvas.addEventListener("click", onClick);
  ui.opacity.addEventListener("input", () => {
    model.set("opacity", Number(ui.opacity.value));
    model.save_changes();
  });
  ui.colormap.addEventListener("change", () => {
    model.set("colormap", ui.colormap.value);
    model.save_changes();
  });
  const listeners = [
    ["msg:custom", onMessage],
    ["change:opacity", onOpacity],
    ["change:colormap", syncControls],
    ["change:image_png", loadImages],
    ["change:heatmap_png", onHeatmapChange],
  ];
  for (const [name, fn] of listeners) model.on(name, fn);
  syncControls();
  loadImages();
  return () => {
    for (const [name, fn] of listeners) model.off(name, fn);
  };
}

export default { render };
