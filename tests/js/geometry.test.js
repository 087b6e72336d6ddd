import { describe, expect, it } from "vitest";
import { clientToPixel, displayScale } from "../../js/lib/geometry.js";

describe("displayScale", () => {
  it("scales small images up to about 256 px with an integer factor", () => {
    expect(displayScale(64)).toBe(4);
    expect(displayScale(32)).toBe(8);
    expect(displayScale(100)).toBe(2);
  });
  it("never scales down", () => {
    expect(displayScale(224)).toBe(1);
    expect(displayScale(1000)).toBe(1);
  });
});

describe("clientToPixel", () => {
  const rect = { left: 10, top: 20, width: 256, height: 128 }; // a 64 x 32 image shown at 4x

  it("maps pointer positions to image pixels", () => {
    expect(clientToPixel(10, 20, rect, 64, 32)).toEqual({ x: 0, y: 0 });
    expect(clientToPixel(10 + 4 * 5 + 3.9, 20 + 4 * 7 + 0.1, rect, 64, 32)).toEqual({ x: 5, y: 7 });
    expect(clientToPixel(10 + 255.9, 20 + 127.9, rect, 64, 32)).toEqual({ x: 63, y: 31 });
  });
  it("accounts for CSS scaling of the canvas (rect differs from the canvas size)", () => {
    const half = { left: 0, top: 0, width: 128, height: 64 };
    expect(clientToPixel(127, 63, half, 64, 32)).toEqual({ x: 63, y: 31 });
  });
  it("returns null outside the image or for an empty rect", () => {
    expect(clientToPixel(9, 30, rect, 64, 32)).toBeNull();
    expect(clientToPixel(10 + 256, 30, rect, 64, 32)).toBeNull();
    expect(clientToPixel(20, 20 + 128, rect, 64, 32)).toBeNull();
    expect(clientToPixel(0, 0, { left: 0, top: 0, width: 0, height: 0 }, 64, 32)).toBeNull();
  });
});
