// @ts-check
// Requests from a view to Python and the view's status: ids per request kind (latest wins), the busy
// state (own requests pending or the model's `busy` trait), errors (error replies or the `error` trait) and the
// view's size (the `scale` trait: everything enlarged, for projectors).
import { createRequests } from "./requests.js";

/** Wire `model` to `status` (from createStatus); returns { request, accept, dispose }. */
export function createChannel(model, status) {
  const kinds = new Map();
  const update = () => status.busy([...kinds.values()].some((r) => r.busy) || Boolean(model.get("busy")));
  const onError = () => {
    const message = model.get("error");
    if (message) status.showError(message);
    else status.clearError();
  };
  const zoom = () => {
    const scale = model.get("scale") ?? 1;
    status.root.style.zoom = scale === 1 ? "" : String(scale);
  };
  model.on("change:busy", update);
  model.on("change:error", onError);
  model.on("change:scale", zoom);
  onError();
  update();
  zoom();
  return {
    /** Send `{type: kind, id, ...fields}`; an earlier request of the same kind becomes stale. Returns the id. */
    request(kind, fields = {}) {
      if (!kinds.has(kind)) kinds.set(kind, createRequests());
      const id = kinds.get(kind).start();
      model.send({ type: kind, id, ...fields });
      update();
      return id;
    },
    /**
     * True for the reply to the latest request of its kind (stale and unknown replies: false).
     * An accepted error reply is shown; an accepted result clears the error line.
     */
    accept(msg) {
      const accepted = [...kinds.values()].some((r) => r.accept(msg));
      if (!accepted) return false;
      update();
      if (msg.type === "error") status.showError(msg.message);
      else status.clearError();
      return true;
    },
    dispose() {
      model.off("change:busy", update);
      model.off("change:error", onError);
      model.off("change:scale", zoom);
    },
  };
}
