// @ts-check
// Mapping between image pixels and the scaled-up canvas.

export const DISPLAY_WIDTH = 256;

/** Integer upscaling factor so that small images show at about `target` px wide (never below 1). */
export function displayScale(width, target = DISPLAY_WIDTH) {
  return Math.max(1, Math.floor(target / width));
}

export const PANEL_GAP = 4; // canvas px between the image and the heatmap shown side by side

/**
 * Where an image of `width` x `height` pixels, scaled by `scale`, is drawn on a canvas: `panels` copies side by side
 * (the image and its heatmap, for the "side-by-side" display), PANEL_GAP canvas px apart.
 * Returns { width, height, scale, offsets (canvas x of each panel), canvasWidth, canvasHeight }.
 */
export function panelLayout(width, height, scale, panels = 1) {
  const offsets = Array.from({ length: panels }, (_, i) => i * (width * scale + PANEL_GAP));
  return { width, height, scale, offsets, canvasWidth: offsets[offsets.length - 1] + width * scale, canvasHeight: height * scale };
}

/**
 * Image pixel under a pointer position on a canvas drawn with `layout` (panelLayout), in whichever panel it falls,
 * given the canvas' on-screen rectangle (so CSS scaling is accounted for). Null in a gap or outside.
 */
export function clientToPanelPixel(clientX, clientY, rect, layout) {
  if (!(rect.width > 0 && rect.height > 0)) return null;
  const cx = ((clientX - rect.left) / rect.width) * layout.canvasWidth;
  const y = Math.floor((((clientY - rect.top) / rect.height) * layout.canvasHeight) / layout.scale);
  for (const offset of layout.offsets) {
    const x = Math.floor((cx - offset) / layout.scale);
    if (x >= 0 && y >= 0 && x < layout.width && y < layout.height) return { x, y };
  }
  return null;
}

/** The box [x0, y0, x1, y1] (end exclusive) spanned by two image pixels, in either order. */
export function boxFromPixels(a, b) {
  return [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x) + 1, Math.max(a.y, b.y) + 1];
}
