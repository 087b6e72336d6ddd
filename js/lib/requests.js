// @ts-check
// Request ids and "latest wins" bookkeeping: only the reply to the newest request counts.

let viewCounter = 0;

/** Ids unique per view, so that views of the same model ignore each other's replies. */
export function createRequests(prefix = `v${++viewCounter}-${Math.random().toString(36).slice(2, 8)}`) {
  let count = 0;
  let latest = null;
  let busy = false;
  return {
    /** Start a new request; earlier ones become stale. Returns its id. */
    start() {
      count += 1;
      latest = `${prefix}:${count}`;
      busy = true;
      return latest;
    },
    /** True (once) for the reply to the latest request; false for stale or repeated replies. */
    accept(reply) {
      if (!busy || reply == null || reply.id !== latest) return false;
      busy = false;
      return true;
    },
    get busy() {
      return busy;
    },
  };
}
