// A model for views without a kernel (static HTML snapshots): the saved state, local changes, and an
// error reply to every request, since nothing can compute it.

export const NO_KERNEL = "this is a static snapshot: run the notebook to compute new results";

/** Bytes saved as {"$bytes": base64} become DataViews (what ipywidgets gives for binary buffers). */
export function decodeState(value) {
  if (Array.isArray(value)) return value.map(decodeState);
  if (value && typeof value === "object") {
    if (typeof value.$bytes === "string") {
      const raw = atob(value.$bytes);
      const bytes = Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
      return new DataView(bytes.buffer);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeState(v)]));
  }
  return value;
}

/** The anywidget model interface over `state` (already decoded). */
export function createStaticModel(state) {
  const values = { ...state };
  const listeners = new Map();
  const emit = (name, ...args) => {
    for (const fn of [...(listeners.get(name) ?? [])]) fn(...args);
  };
  return {
    get: (key) => values[key],
    set(key, value) {
      values[key] = value;
      emit(`change:${key}`);
    },
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(fn);
    },
    off(name, fn) {
      listeners.get(name)?.delete(fn);
    },
    save_changes() {},
    send(msg) {
      setTimeout(() => emit("msg:custom", { type: "error", id: msg.id, message: NO_KERNEL }, []), 0);
    },
  };
}
