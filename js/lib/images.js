// @ts-check
// PNG buffers (Bytes traits) shown as <img> elements through object URLs, released when replaced.

/** A pool of object URLs: `url(bytes)` makes one, `release()` revokes all made so far. */
export function createUrlPool() {
  let urls = [];
  return {
    url(bytes) {
      const url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
      urls.push(url);
      return url;
    },
    release() {
      for (const url of urls) URL.revokeObjectURL(url);
      urls = [];
    },
  };
}
