// @ts-check
// PNG buffers to bitmaps (the latest decode wins), and the image + heatmap + marker composite on a 2-D canvas context.
import { createRequests } from "./requests.js";

/** Decode PNG bytes (DataView / typed array / ArrayBuffer from a Bytes traitlet) to an ImageBitmap. */
export function decodePng(bytes) {
  return createImageBitmap(new Blob([bytes], { type: "image/png" }));
}

/**
 * Decode the latest PNGs: `decode(pngs, show)` decodes each buffer (null for an empty one) and calls
 * `show(bitmaps)` unless a newer `decode` call came meanwhile; a failure of the latest call is shown
 * with `status.showError`.
 */
export function createDecoder(status, prefix = "decode") {
  const decodes = createRequests(prefix);
  return async function decode(pngs, show) {
    const id = decodes.start();
    try {
      const bitmaps = await Promise.all(pngs.map((png) => (byteLength(png) ? decodePng(png) : null)));
      if (decodes.accept({ id })) show(bitmaps);
    } catch (err) {
      if (decodes.accept({ id })) status.showError(`could not decode the image: ${err.message ?? err}`);
    }
  };
}

/** Byte length of a buffer-like value (0 for missing). */
export function byteLength(bytes) {
  return bytes?.byteLength ?? 0;
}

/**
 * Draw `image` scaled by the integer `scale` without smoothing, `heatmap` over it with
 * `opacity`, and a marker box around the image pixel `marker` ({x, y}) when given.
 */
export function drawComposite(ctx, { image, heatmap, opacity, scale, marker }) {
  const w = image.width * scale;
  const h = image.height * scale;
  ctx.imageSmoothingEnabled = false;
  ctx.globalAlpha = 1;
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(image, 0, 0, w, h);
  if (heatmap) {
    ctx.globalAlpha = opacity;
    ctx.drawImage(heatmap, 0, 0, w, h);
    ctx.globalAlpha = 1;
  }
  if (marker) drawMarker(ctx, marker, scale);
}

/** A box around one image pixel, black with a white core so it shows on any colour. */
function drawMarker(ctx, { x, y }, scale) {
  const size = Math.max(scale, 5) + 4;
  const left = (x + 0.5) * scale - size / 2;
  const top = (y + 0.5) * scale - size / 2;
  ctx.lineWidth = 3;
  ctx.strokeStyle = "#000";
  ctx.strokeRect(left, top, size, size);
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(left, top, size, size);
}

/** A dashed box around the image pixels x0..x1-1, y0..y1-1 (a region), black and white. */
export function drawRegion(ctx, [x0, y0, x1, y1], scale) {
  const rect = [x0 * scale + 0.5, y0 * scale + 0.5, (x1 - x0) * scale - 1, (y1 - y0) * scale - 1];
  ctx.setLineDash([4, 3]);
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#000";
  ctx.strokeRect(...rect);
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(...rect);
}
