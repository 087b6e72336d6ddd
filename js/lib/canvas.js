// @ts-check
// PNG buffers to bitmaps (the latest decode wins), and the image + heatmap + marker composite on a 2-D canvas context
// in the three displays of a heatmap: "overlay", "side-by-side" and "contour" (the outline of the most relevant pixels).
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
 * The outline of a mask: `rgba` (RGBA bytes, `width` x `height`, e.g. the ImageData of a contour PNG) is the mask
 * where alpha >= 128. Returns RGBA bytes that keep the colour of each mask pixel with a 4-neighbour outside the mask
 * (or on the image's edge), opaque, and are transparent everywhere else: the mask's inner boundary.
 * @param {ArrayLike<number>} rgba @param {number} width @param {number} height
 */
export function outlineRgba(rgba, width, height) {
  const out = new Uint8ClampedArray(width * height * 4);
  const inside = (x, y) => x >= 0 && y >= 0 && x < width && y < height && rgba[(y * width + x) * 4 + 3] >= 128;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      if (!inside(x, y)) continue;
      if (inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1)) continue;
      const i = (y * width + x) * 4;
      out.set([rgba[i], rgba[i + 1], rgba[i + 2], 255], i);
    }
  }
  return out;
}

/** A canvas with the outline (outlineRgba) of the mask in the decoded contour PNG `bitmap`, at the image's size. */
export function outlineCanvas(bitmap) {
  const { width, height } = bitmap;
  const canvas = Object.assign(document.createElement("canvas"), { width, height });
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.drawImage(bitmap, 0, 0);
  const pixels = ctx.getImageData(0, 0, width, height);
  pixels.data.set(outlineRgba(pixels.data, width, height));
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

/**
 * Draw `image` scaled by the integer `scale` without smoothing in one of the displays of a heatmap (`mode`):
 * "overlay": `heatmap` over it with `opacity`; "side-by-side": the image, and `heatmap` on white in a second panel
 * (`layout` from panelLayout, which places the panels); "contour": the image with `outline` (outlineCanvas) over it.
 * A marker box around the image pixel `marker` ({x, y}) is drawn in every panel when given.
 */
export function drawComposite(ctx, { image, heatmap, opacity, scale, marker, mode = "overlay", outline = null, layout = null }) {
  const w = image.width * scale;
  const h = image.height * scale;
  const offsets = layout?.offsets ?? [0];
  ctx.imageSmoothingEnabled = false;
  ctx.globalAlpha = 1;
  ctx.clearRect(0, 0, layout?.canvasWidth ?? w, h);
  ctx.drawImage(image, 0, 0, w, h);
  if (mode === "side-by-side" && offsets.length > 1) {
    ctx.fillStyle = "#fff";
    ctx.fillRect(offsets[1], 0, w, h);
    if (heatmap) ctx.drawImage(heatmap, offsets[1], 0, w, h);
  } else if (mode === "contour") {
    if (outline) ctx.drawImage(outline, 0, 0, w, h);
  } else if (heatmap) {
    ctx.globalAlpha = opacity;
    ctx.drawImage(heatmap, 0, 0, w, h);
    ctx.globalAlpha = 1;
  }
  if (marker) for (const offset of offsets) drawMarker(ctx, marker, scale, offset);
}

/** A box around one image pixel (in the panel at canvas x `offset`), black with a white core so it shows on any colour. */
function drawMarker(ctx, { x, y }, scale, offset = 0) {
  const size = Math.max(scale, 5) + 4;
  const left = offset + (x + 0.5) * scale - size / 2;
  const top = (y + 0.5) * scale - size / 2;
  ctx.lineWidth = 3;
  ctx.strokeStyle = "#000";
  ctx.strokeRect(left, top, size, size);
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(left, top, size, size);
}

/** A dashed box around the image pixels x0..x1-1, y0..y1-1 (a region; in the panel at canvas x `offset`), black and
 * white. */
export function drawRegion(ctx, [x0, y0, x1, y1], scale, offset = 0) {
  const rect = [offset + x0 * scale + 0.5, y0 * scale + 0.5, (x1 - x0) * scale - 1, (y1 - y0) * scale - 1];
  ctx.setLineDash([4, 3]);
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#000";
  ctx.strokeRect(...rect);
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(...rect);
}
