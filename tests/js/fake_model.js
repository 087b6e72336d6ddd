// The model the view tests render with: the static model's interface (js/lib/static_model.js), plus what a test
// needs to play Python: the messages the view sent, how often it saved, and `receive` for a reply.
import { createModel } from "../../js/lib/static_model.js";

export function createFakeModel(initial) {
  const sent = [];
  const model = createModel(initial, (msg) => sent.push(msg));
  return Object.assign(model, {
    sent,
    saved: 0,
    save_changes() {
      model.saved += 1;
    },
    /** Deliver a custom message from Python. */
    receive(msg) {
      model.emit("msg:custom", msg, []);
    },
  });
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
