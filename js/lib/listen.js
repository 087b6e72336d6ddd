// @ts-check
// The listener table of a view: model events and DOM events attached together, detached by one call.

/**
 * @typedef {[string, (...args: any[]) => void]} ModelListener  an event of the model ("change:x", "msg:custom")
 * @typedef {[EventTarget, string, (event: any) => void]} DomListener  an event of a DOM node
 */

/**
 * Attach `[event, handler]` pairs to `model` and `[node, event, handler]` triples to DOM nodes.
 * @param {{ on: Function, off: Function }} model
 * @param {ModelListener[]} events
 * @param {DomListener[]} [domEvents]
 * @returns {() => void} detaches them all (the cleanup a view's render returns calls it)
 */
export function listen(model, events, domEvents = []) {
  for (const [name, fn] of events) model.on(name, fn);
  for (const [node, name, fn] of domEvents) node.addEventListener(name, fn);
  return () => {
    for (const [name, fn] of events) model.off(name, fn);
    for (const [node, name, fn] of domEvents) node.removeEventListener(name, fn);
  };
}
