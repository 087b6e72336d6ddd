// A small stand-in for anywidget's `model`: get/set/on/off/send/save_changes, plus helpers
// for tests to push messages from "Python" and inspect what the view sent.
export function createFakeModel(initial) {
  const state = { ...initial };
  const listeners = new Map();
  const emit = (name, ...args) => {
    for (const fn of [...(listeners.get(name) ?? [])]) fn(...args);
  };
  return {
    sent: [],
    saved: 0,
    get: (key) => state[key],
    set(key, value) {
      state[key] = value;
      emit(`change:${key}`);
    },
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(fn);
    },
    off(name, fn) {
      listeners.get(name)?.delete(fn);
    },
    send(msg) {
      this.sent.push(msg);
    },
    save_changes() {
      this.saved += 1;
    },
    /** Deliver a custom message from Python. */
    receive(msg) {
      emit("msg:custom", msg, []);
    },
    listenerCount: () => [...listeners.values()].reduce((n, set) => n + set.size, 0),
  };
}

/** A 2-D context that records the calls and property assignments made on it. */
export function createRecordingContext() {
  const calls = [];
  const record = (name) => (...args) => calls.push([name, ...args]);
  const props = {};
  return new Proxy(
    { calls },
    {
      get(target, key) {
        if (key === "calls") return calls;
        if (key in props) return props[key];
        return record(key);
      },
      set(target, key, value) {
        props[key] = value;
        calls.push([`set ${String(key)}`, value]);
        return true;
      },
    },
  );
}
