// @ts-check
// Coalescing of redraws: a model update changes several traits at once, one render is enough.

/** A function that runs `fn` once in the next microtask however often it is called before then. */
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}
