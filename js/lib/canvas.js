// PNG buffers to bitmaps, and the image + heatmap + marker composite on a 2-D canvas context.

/** Decode PNG bytes (DataView / typed array / ArrayBuffer from a Bytes traitlet) to an ImageBitmap. */
export function decodePng(bytes) {
  return createImageBitmap(new Blob([bytes], { type: "image/png" }));
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
