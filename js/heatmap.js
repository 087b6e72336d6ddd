// @ts-check
// HeatmapView: an image with its relevance heatmap overlaid. Click a pixel to ask Python for its
// relevance ("pixel" -> "pixel_result"), drag a box to set a region ("region" -> "region_result"),
// switch between the full heatmap and the selected concept's conditional heatmap (`show`), and between the displays
// (`overlay`: over the image, side by side, or the contour of the most relevant pixels).
import { byteLength, createDecoder, drawComposite, drawRegion, outlineCanvas } from "./lib/canvas.js";
import { createChannel } from "./lib/channel.js";
import { element, style } from "./lib/dom.js";
import { formatRelevance, formatShare } from "./lib/format.js";
import { createUrlPool } from "./lib/images.js";
import { boxFromPixels, clientToPanelPixel, displayScale, panelLayout } from "./lib/geometry.js";
import { listen } from "./lib/listen.js";
import { coalesce } from "./lib/schedule.js";
import { createStatus } from "./lib/status.js";

const CSS = `
.cs-heatmap { display: inline-flex; flex-direction: column; gap: 4px; }
.cs-heatmap canvas { cursor: crosshair; align-self: flex-start; }
.cs-heatmap .cs-controls { display: flex; gap: 4px 12px; align-items: center; flex-wrap: wrap; max-width: 320px; }
.cs-heatmap .cs-toggle button[aria-pressed="true"] { font-weight: bold; }
.cs-heatmap .cs-caption { max-width: 320px; color: var(--cs-fg-muted); }
.cs-heatmap .cs-colorbar { display: flex; flex-direction: column; max-width: 256px; font-size: 11px; color: var(--cs-fg-muted); }
.cs-heatmap .cs-colorbar img { width: 100%; height: 10px; image-rendering: pixelated; border: 1px solid var(--cs-border); }
.cs-heatmap .cs-colorbar .cs-ticks { display: flex; justify-content: space-between; }
`;

/** The colour bar's tick texts and its summary line for a map's scale ({max, sum}) and the explained logit. */
export function colorbarText(scale, logit) {
  if (!scale) return { ticks: ["", "0", ""], summary: "" };
  const max = formatRelevance(scale.max);
  const share = logit ? ` = ${formatShare(scale.sum / logit)} of the logit ${formatRelevance(logit)}` : "";
  return { ticks: [`−${max}`, "0", `+${max}`], summary: `ΣR ${formatRelevance(scale.sum)}${share}` };
}
const DRAG_MIN = 4; // pointer movement (CSS px) that makes a press a region drag instead of a click

const OVERLAY_NAMES = { overlay: "overlay", "side-by-side": "side by side", contour: "contour" };

/** The caption under the canvas: which map is shown, and for the contour display what its outline marks. */
export function captionText(conceptLabel, overlay, percent) {
  const map = conceptLabel === null ? "relevance of the target" : `concept ${conceptLabel}`;
  return overlay === "contour" ? `${map}; outline: top ${percent} % of pixels by positive relevance` : map;
}

function buildDom(el, colormaps, overlays) {
  const root = element("div", { className: "cs-view cs-heatmap" });
  const canvas = element("canvas", { className: "cs-canvas", tabIndex: 0, title: "drag a box to rank the concepts in it; Escape clears it" });
  canvas.dataset.frame = "0";
  canvas.dataset.shown = "";
  const opacity = element("input", { type: "range", min: "0", max: "1", step: "0.05", className: "cs-opacity" });
  const colormap = element(
    "select",
    { className: "cs-colormap" },
    colormaps.map((name) => element("option", { value: name, textContent: name })),
  );
  const overlay = element(
    "select",
    { className: "cs-overlay", title: "how the relevance is drawn" },
    overlays.map((name) => element("option", { value: name, textContent: OVERLAY_NAMES[name] ?? name })),
  );
  const showHeatmap = element("button", { className: "cs-show-heatmap", textContent: "heatmap", type: "button" });
  const showConcept = element("button", { className: "cs-show-concept", textContent: "concept", type: "button" });
  const clearRegion = element("button", { className: "cs-clear-region", textContent: "clear region", type: "button" });
  const caption = element("div", { className: "cs-caption" });
  const colorbarImage = element("img", { alt: "colour scale" });
  const ticks = element("div", { className: "cs-ticks" }, [0, 1, 2].map(() => element("span")));
  const summary = element("div", { className: "cs-summary" });
  const colorbar = element("div", { className: "cs-colorbar" }, [colorbarImage, ticks, summary]);
  const controls = element("div", { className: "cs-controls" }, [
    element("span", { className: "cs-toggle" }, [showHeatmap, showConcept]),
    element("label", {}, ["opacity ", opacity]),
    element("label", {}, ["colormap ", colormap]),
    element("label", {}, ["display ", overlay]),
    clearRegion,
  ]);
  root.append(style(CSS), canvas, caption, colorbar, controls);
  el.append(root);
  return {
    root, canvas, caption, colorbar, colorbarImage, ticks, summary, opacity, colormap, overlay, showHeatmap, showConcept,
    clearRegion, status: createStatus(root),
  };
}

/**
 * The synced traits of the Python view.
 * @typedef {{
 *   image_png: DataView, heatmap_png: DataView, concept_png: DataView, concept_label: string,
 *   show: "heatmap" | "concept", region: number[], colormap: string, colormaps: string[], opacity: number,
 *   overlay: "overlay" | "side-by-side" | "contour", overlays: string[], contour_percent: number,
 *   contour_png: DataView, concept_contour_png: DataView,
 *   colorbar_png: DataView, scales: { heatmap?: { max: number, sum: number }, concept?: { max: number, sum: number } },
 *   logit: number | null,
 *   busy: boolean, error: string,
 * }} Model
 */

/** @type {import("@anywidget/types").Render<Model>} */
function render({ model, el }) {
  const ui = buildDom(el, model.get("colormaps"), model.get("overlays") ?? ["overlay"]);
  const ctx = ui.canvas.getContext("2d");
  // contour: the decoded contour PNG of the heatmap ({bitmap, outline}: its outline canvas, made when first drawn)
  const state = { image: null, heatmap: null, contour: null, concept: null, marker: null, drag: null, frame: 0, layout: null };
  const channel = createChannel(model, ui.status);
  const decodeImages = createDecoder(ui.status, "decode");
  const decodeConcept = createDecoder(ui.status, "decode-concept");

  const showingConcept = () => model.get("show") === "concept" && state.concept !== null;

  /** The outline canvas of a decoded contour ({bitmap, outline}), made once, when first drawn. */
  const outlineOf = (contour) => {
    if (contour && !contour.outline) contour.outline = outlineCanvas(contour.bitmap);
    return contour?.outline ?? null;
  };

  function redraw() {
    if (!state.image) return;
    const mode = model.get("overlay") ?? "overlay";
    const scale = displayScale(state.image.width);
    const layout = panelLayout(state.image.width, state.image.height, scale, mode === "side-by-side" ? 2 : 1);
    state.layout = layout;
    const [w, h] = [layout.canvasWidth, layout.canvasHeight];
    if (ui.canvas.width !== w || ui.canvas.height !== h) Object.assign(ui.canvas, { width: w, height: h });
    const concept = showingConcept();
    const heatmap = concept ? state.concept.bitmap : state.heatmap;
    const outline = mode === "contour" ? outlineOf(concept ? state.concept.contour : state.contour) : null;
    drawComposite(ctx, { image: state.image, heatmap, opacity: model.get("opacity"), scale, marker: state.marker, mode, outline, layout });
    const region = state.drag?.box ?? model.get("region");
    if (region?.length === 4) for (const offset of layout.offsets) drawRegion(ctx, region, scale, offset);
    state.frame += 1;
    ui.canvas.dataset.frame = String(state.frame);
    ui.canvas.dataset.shown = concept ? state.concept.label : "heatmap";
    ui.canvas.dataset.overlay = mode;
    ui.caption.textContent = captionText(concept ? state.concept.label : null, mode, model.get("contour_percent"));
    drawColorbar(concept);
  }

  const urls = createUrlPool();
  let colorbarBytes = null;
  function drawColorbar(concept) {
    const png = model.get("colorbar_png");
    if (png !== colorbarBytes && byteLength(png)) {
      urls.release();
      ui.colorbarImage.src = urls.url(png);
      colorbarBytes = png;
    }
    const scales = model.get("scales") ?? {};
    const text = colorbarText(concept ? scales.concept : scales.heatmap, concept ? null : model.get("logit"));
    [...ui.ticks.children].forEach((tick, i) => (tick.textContent = text.ticks[i]));
    ui.summary.textContent = text.summary;
  }

  async function loadImages() {
    const [imagePng, heatmapPng, contourPng] = [model.get("image_png"), model.get("heatmap_png"), model.get("contour_png")];
    if (!byteLength(imagePng)) return;
    await decodeImages([imagePng, heatmapPng, contourPng], ([image, heatmap, contour]) => {
      Object.assign(state, { image, heatmap, contour: contour ? { bitmap: contour, outline: null } : null });
      redraw();
    });
  }

  // The concept's bitmap keeps the label it was sent with, so a frame never shows one concept's
  // name with another's map while a new PNG decodes.
  async function loadConcept() {
    const [png, contourPng, label] = [model.get("concept_png"), model.get("concept_contour_png"), model.get("concept_label")];
    await decodeConcept([png, contourPng], ([bitmap, contour]) => {
      state.concept = bitmap ? { bitmap, label, contour: contour ? { bitmap: contour, outline: null } : null } : null;
      syncControls();
      redraw();
    });
  }

  function requestPixel({ x, y }) {
    ui.status.show(`computing relevance at (${x}, ${y})…`);
    channel.request("pixel", { x, y });
  }

  const requestRegion = (box) => channel.request("region", { box });

  const pixelAt = (event) => {
    const rect = ui.canvas.getBoundingClientRect();
    return state.layout && clientToPanelPixel(event.clientX, event.clientY, rect, state.layout);
  };

  function onMouseDown(event) {
    if (!state.image || event.button !== 0) return;
    const start = pixelAt(event);
    if (start) state.drag = { start, x: event.clientX, y: event.clientY, box: null, moved: false };
  }

  function onMouseMove(event) {
    const drag = state.drag;
    if (!drag) return;
    drag.moved ||= Math.hypot(event.clientX - drag.x, event.clientY - drag.y) >= DRAG_MIN;
    const end = pixelAt(event);
    if (drag.moved && end) {
      drag.box = boxFromPixels(drag.start, end);
      redraw();
    }
  }

  function onMouseUp() {
    const drag = state.drag;
    if (!drag) return;
    state.drag = null;
    if (drag.box) {
      state.suppressClick = true; // the click that follows this mouseup ends the drag, it is no pixel click
      requestRegion(drag.box);
    }
    redraw();
  }

  function onClick(event) {
    if (state.suppressClick) {
      state.suppressClick = false;
      return;
    }
    if (!state.image) return;
    const pixel = pixelAt(event);
    if (pixel) requestPixel(pixel);
  }

  function onMessage(msg) {
    if (!channel.accept(msg)) return;
    if (msg.type === "pixel_result") {
      ui.status.show(`relevance at (${msg.x}, ${msg.y}): ${formatRelevance(msg.value)}`);
      ui.status.line.dataset.value = String(msg.value);
      state.marker = { x: msg.x, y: msg.y };
      redraw();
    } else if (msg.type === "error") {
      ui.status.show("");
    }
  }

  // A kernel update changes a map and its contour at once: decode them once.
  const reloadImages = coalesce(loadImages);
  const reloadConcept = coalesce(loadConcept);

  // A new heatmap (new relevance or colormap): redraw and refresh the value under the marker.
  function onHeatmapChange() {
    reloadImages();
    if (state.marker) requestPixel(state.marker);
  }

  function syncControls() {
    ui.opacity.value = String(model.get("opacity"));
    ui.colormap.value = model.get("colormap");
    ui.overlay.value = model.get("overlay") ?? "overlay";
    const concept = showingConcept();
    ui.showHeatmap.setAttribute("aria-pressed", String(!concept));
    ui.showConcept.setAttribute("aria-pressed", String(concept));
    ui.showConcept.disabled = state.concept === null;
    const region = model.get("region");
    ui.clearRegion.hidden = region?.length !== 4;
    ui.clearRegion.title = region?.length === 4 ? `region (${region[0]}, ${region[1]})–(${region[2]}, ${region[3]})` : "";
  }

  const onState = () => {
    syncControls();
    redraw();
  };
  const setShow = (value) => () => {
    model.set("show", value);
    model.save_changes();
  };
  /** @type {import("./lib/listen.js").DomListener[]} */
  const domListeners = [
    [ui.canvas, "mousedown", onMouseDown],
    [window, "mousemove", onMouseMove],
    [window, "mouseup", onMouseUp],
    [ui.canvas, "click", onClick],
    [ui.root, "keydown", (event) => {
      if (event.key === "Escape" && model.get("region")?.length === 4) requestRegion([]);
    }],
    [ui.showHeatmap, "click", setShow("heatmap")],
    [ui.showConcept, "click", setShow("concept")],
    [ui.clearRegion, "click", () => requestRegion([])],
    [ui.opacity, "input", () => {
      model.set("opacity", Number(ui.opacity.value));
      model.save_changes();
    }],
    [ui.colormap, "change", () => {
      model.set("colormap", ui.colormap.value);
      model.save_changes();
    }],
    [ui.overlay, "change", () => {
      model.set("overlay", ui.overlay.value);
      model.save_changes();
    }],
  ];
  /** @type {import("./lib/listen.js").ModelListener[]} */
  const listeners = [
    ["msg:custom", onMessage],
    ["change:opacity", onState],
    ["change:colormap", syncControls],
    ["change:overlay", onState],
    ["change:contour_percent", onState],
    ["change:contour_png", reloadImages],
    ["change:concept_contour_png", reloadConcept],
    ["change:show", onState],
    ["change:region", onState],
    ["change:image_png", reloadImages],
    ["change:heatmap_png", onHeatmapChange],
    ["change:concept_png", reloadConcept],
    ["change:colorbar_png", onState],
    ["change:scales", onState],
    ["change:logit", onState],
  ];
  const unlisten = listen(model, listeners, domListeners);
  syncControls();
  loadImages();
  loadConcept();
  return () => {
    unlisten();
    channel.dispose();
    urls.release();
  };
}

export default { render };
