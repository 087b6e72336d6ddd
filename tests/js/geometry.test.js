import { describe, expect, it } from "vitest";
import { PANEL_GAP, clientToPanelPixel, displayScale, panelLayout } from "../../js/lib/geometry.js";

const clientToPixel = (x, y, rect, width, height) => clientToPanelPixel(x, y, rect, panelLayout(width, height, 4));

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

describe("clientToPanelPixel on one panel", () => {
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

describe("clientToPanelPixel side by side", () => {
  // a 64 x 32 image at 4x twice: panels at canvas x 0 and 256 + PANEL_GAP, shown at half size on the page
  const layout = panelLayout(64, 32, 4, 2);
  const rect = { left: 10, top: 20, width: layout.canvasWidth / 2, height: 64 };

  it("maps a pointer in either panel to the same image pixel, and the gap to none", () => {
    expect(layout.canvasWidth).toBe(512 + PANEL_GAP);
    expect(clientToPanelPixel(10 + 2 * 5 + 1, 20 + 2 * 7 + 1, rect, layout)).toEqual({ x: 5, y: 7 });
    const right = 10 + (256 + PANEL_GAP) / 2;
    expect(clientToPanelPixel(right + 2 * 5 + 1, 20 + 2 * 7 + 1, rect, layout)).toEqual({ x: 5, y: 7 });
    expect(clientToPanelPixel(right + 127.9, 20 + 63.9, rect, layout)).toEqual({ x: 63, y: 31 });
    expect(clientToPanelPixel(10 + 128 + PANEL_GAP / 4, 30, rect, layout)).toBeNull();
  });
});
