// @ts-check
// The anywidget model interface over plain state, and the model of views without a kernel (static HTML snapshots):
// the saved state, local changes, and an error reply to every request, since nothing can compute it.

export const NO_KERNEL = "this is a static snapshot: run the notebook to compute new results";

/**
 * Bytes saved as {"$bytes": base64} become DataViews (what ipywidgets gives for binary buffers).
 * @param {any} value
 * @returns {any}
 */
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

/**
 * The model interface a view's `render({ model, el })` uses (get/set/on/off/save_changes/send) over `state`, plus
 * `emit(name, ...args)` (fire the listeners of an event) and `listenerCount()`. What a sent message does is up to
 * `send(msg, emit)`.
 * @param {Record<string, any>} state
 * @param {(msg: any, emit: (name: string, ...args: any[]) => void) => void} send
 */
export function createModel(state, send) {
  const values = { ...state };
  /** @type {Map<string, Set<Function>>} */
  const listeners = new Map();
  /** @param {string} name @param {...any} args */
  const emit = (name, ...args) => {
    for (const fn of [...(listeners.get(name) ?? [])]) fn(...args);
  };
  return {
    /** @param {string} key */
    get: (key) => values[key],
    /** @param {string} key @param {any} value */
    set(key, value) {
      values[key] = value;
      emit(`change:${key}`);
    },
    /** @param {string} name @param {Function} fn */
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name)?.add(fn);
    },
    /** @param {string} name @param {Function} fn */
    off(name, fn) {
      listeners.get(name)?.delete(fn);
    },
    save_changes() {},
    /** @param {any} msg */
    send(msg) {
      send(msg, emit);
    },
    emit,
    listenerCount: () => [...listeners.values()].reduce((n, set) => n + set.size, 0),
  };
}

/**
 * The model of a static snapshot over `state` (already decoded): every request is answered with an error.
 * @param {Record<string, any>} state
 */
export function createStaticModel(state) {
  return createModel(state, (msg, emit) => {
    setTimeout(() => emit("msg:custom", { type: "error", id: msg.id, message: NO_KERNEL }, []), 0);
  });
}
