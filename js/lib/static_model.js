// @ts-check
// The anywidget model interface over plain state, and the model of views without a kernel (static HTML snapshots):
// the saved state, the changes the view makes itself, and replies to requests from the snapshot's precomputed table
// (conceptscope.widgets.precompute): a precomputed request sets the traits of every view in which its next state
// differs from the one shown, and is answered with the reply the kernel sent; any other says it was not precomputed.

export const NOT_PRECOMPUTED =
  "not precomputed in this snapshot: save it with save_html(..., precompute=...) for this class, layer or concept, " +
  "or run the notebook";

/**
 * Bytes saved as {"$bytes": base64} become DataViews (what ipywidgets gives for binary buffers); {"$value": i} is
 * entry i of the snapshot's shared values (`value(i)`).
 * @param {any} value
 * @param {(index: number) => any} [value_]
 * @returns {any}
 */
export function decodeState(value, value_) {
  if (Array.isArray(value)) return value.map((v) => decodeState(v, value_));
  if (value && typeof value === "object") {
    if (typeof value.$bytes === "string") {
      const raw = atob(value.$bytes);
      const bytes = Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
      return new DataView(bytes.buffer);
    }
    if (typeof value.$value === "number" && value_) return value_(value.$value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeState(v, value_)]));
  }
  return value;
}

/**
 * The model interface a view's `render({ model, el })` uses (get/set/on/off/save_changes/send) over `state`, plus
 * `emit(name, ...args)` (fire the listeners of an event), `update(changes)` (set several traits, then fire their
 * change events, as a kernel's state message does) and `listenerCount()`. What a sent message does is up to
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
    /** @param {Record<string, any>} changes */
    update(changes) {
      Object.assign(values, changes);
      for (const key of Object.keys(changes)) emit(`change:${key}`);
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

/** A request's fields as canonical JSON (keys sorted, no spaces), as conceptscope.widgets.precompute writes them. */
export function fieldsJson(value) {
  const sorted = (v) =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
        : v;
  return JSON.stringify(sorted(value));
}

/**
 * The clicks of one snapshot page: `precomputed` ({start, requests, replies, views, states, next}, or null: nothing
 * precomputed) over the shared `values`. Views attach their models; `answer(viewId, msg)` applies the state a
 * request leads to and returns the reply to send.
 * @param {any} precomputed
 * @param {any[]} [values]
 */
export function createSession(precomputed, values = []) {
  const decoded = new Map();
  /** @param {number} index */
  const value = (index) => {
    if (!decoded.has(index)) decoded.set(index, decodeState(values[index]));
    return decoded.get(index);
  };
  const requests = new Map((precomputed?.requests ?? []).map((key, i) => [key, i]));
  /** @type {Map<number, { model: any, shown: Map<string, number> }>} */
  const views = new Map();
  let current = precomputed?.start ?? null;

  /** Show state `number`: on each view, the traits whose value differs from the one it shows. */
  function apply(number) {
    precomputed.states[number].forEach((viewState, viewId) => {
      const view = views.get(viewId);
      if (viewState < 0 || !view) return;
      const changes = {};
      for (const [trait, index] of Object.entries(precomputed.views[viewState])) {
        if (view.shown.get(trait) === index) continue;
        view.shown.set(trait, index);
        changes[trait] = value(index);
      }
      view.model.update(changes);
    });
  }

  return {
    value,
    /** The model of view `viewId`, which shows the values `shown` ({trait: value index}). */
    attach(viewId, model, shown = {}) {
      views.set(viewId, { model, shown: new Map(Object.entries(shown)) });
    },
    /** The view changed `trait` itself: it shows none of the table's values. */
    touched(viewId, trait) {
      views.get(viewId)?.shown.set(trait, -1);
    },
    /** The reply to `msg` from view `viewId`, after showing the state it leads to; else a not-precomputed error. */
    answer(viewId, msg) {
      const { type, id, ...fields } = msg;
      const request = requests.get(`${viewId}|${type}|${fieldsJson(fields)}`);
      const next = request === undefined || current === null ? undefined : precomputed.next[current][String(request)];
      if (next === undefined) return { type: "error", id, message: NOT_PRECOMPUTED };
      apply(next);
      current = next;
      return { ...precomputed.replies[request], id };
    },
  };
}

/**
 * The model of a view in a static snapshot over `state` (already decoded). Its requests are answered by `session`
 * (createSession) as view `id`; after a refused one, the traits named by its fields (e.g. `target`) announce a change,
 * so that the view's controls show the state again. The traits in `local` (e.g. the heatmap's opacity) are the view's
 * to change; any other change the view makes is undone with a not-precomputed error (nothing here could compute
 * what follows it).
 * @param {Record<string, any>} state
 * @param {{ session?: any, id?: number, local?: string[] }} [options]
 */
export function createStaticModel(state, { session = null, id = -1, local = [] } = {}) {
  const changed = new Map(); // trait -> its value before the view changed it
  const model = createModel(state, (msg, emit) => {
    const reply = session ? session.answer(id, msg) : { type: "error", id: msg.id, message: NOT_PRECOMPUTED };
    setTimeout(() => {
      emit("msg:custom", reply, []);
      // refused: the controls that asked for another class or layer show the model's again
      if (reply.type === "error") for (const key of Object.keys(msg)) if (key !== "id" && key !== "type" && model.get(key) !== undefined) emit(`change:${key}`);
    }, 0);
  });
  const set = model.set;
  return Object.assign(model, {
    /** @param {string} key @param {any} value */
    set(key, value) {
      if (!changed.has(key)) changed.set(key, model.get(key));
      set(key, value);
    },
    save_changes() {
      for (const [key, before] of changed) {
        if (local.includes(key)) {
          session?.touched(id, key);
        } else {
          set(key, before);
          set("error", `${key}: ${NOT_PRECOMPUTED}`);
        }
      }
      changed.clear();
    },
  });
}
