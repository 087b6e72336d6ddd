// @ts-check
// Mapping between image pixels and the scaled-up canvas.

export const DISPLAY_WIDTH = 256;

/** Integer upscaling factor so that small images show at about `target` px wide (never below 1). */
export function displayScale(width, target = DISPLAY_WIDTH) {
  return Math.max(1, Math.floor(target / width));
}

/**
 * Image pixel under a pointer position, given the canvas' on-screen rectangle
 * (getBoundingClientRect, so CSS scaling is accounted for). Null when outside the image.
 */
export function clientToPixel(clientX, clientY, rect, width, height) {
  if (!(rect.width > 0 && rect.height > 0)) return null;
  const x = Math.floor(((clientX - rect.left) / rect.width) * width);
  const y = Math.floor(((clientY - rect.top) / rect.height) * height);
  if (!(x >= 0 && y >= 0 && x < width && y < height)) return null;
  return { x, y };
}

/** The box [x0, y0, x1, y1] (end exclusive) spanned by two image pixels, in either order. */
export function boxFromPixels(a, b) {
  return [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x) + 1, Math.max(a.y, b.y) + 1];
}
