import { describe, expect, it } from "vitest";
import { createRequests } from "../../js/lib/requests.js";

describe("createRequests", () => {
  it("gives increasing ids with the prefix and tracks busy", () => {
    const r = createRequests("p");
    expect(r.busy).toBe(false);
    expect(r.start()).toBe("p:1");
    expect(r.busy).toBe(true);
    expect(r.start()).toBe("p:2");
  });
  it("accepts only the reply to the latest request, once", () => {
    const r = createRequests("p");
    const first = r.start();
    const second = r.start();
    expect(r.accept({ id: first })).toBe(false); // stale
    expect(r.busy).toBe(true);
    expect(r.accept({ id: second })).toBe(true);
    expect(r.busy).toBe(false);
    expect(r.accept({ id: second })).toBe(false); // repeated
  });
  it("ignores replies without id and before any request", () => {
    const r = createRequests("p");
    expect(r.accept({ id: "p:1" })).toBe(false);
    r.start();
    expect(r.accept({})).toBe(false);
    expect(r.accept(null)).toBe(false);
  });
  it("makes ids of different views distinct by default", () => {
    expect(createRequests().start()).not.toBe(createRequests().start());
  });
});
