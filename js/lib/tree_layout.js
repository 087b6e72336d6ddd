// @ts-check
// Layout of a composition tree (root on the left, sub-concepts to the right) with d3-hierarchy.
import { hierarchy, tree } from "d3-hierarchy";

export const NODE = { width: 150, height: 36, gapX: 36, gapY: 8 };

/** A stable key of a tree path [[layer, channel], ...], e.g. "features.15:3/features.12:7". */
export function pathKey(path) {
  return path.map(([layer, channel]) => `${layer}:${channel}`).join("/");
}

/** An SVG path from the right edge of one node to the left edge of another (a horizontal S-curve). */
export function linkPath(x1, y1, x2, y2) {
  const mid = (x1 + x2) / 2;
  return `M${x1},${y1}C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
}

/**
 * Place the nodes of `data` ({path, children: [...] | null, ...}; null children: not expanded yet).
 * Returns {nodes: [{key, data, left, top}], links: [{source, target, d}], width, height} in pixels,
 * every node box `node.width` x `node.height` with its top-left corner at (left, top).
 */
export function layoutTree(data, node = NODE) {
  const root = hierarchy(data, (d) => d.children ?? null);
  const layout = tree();
  layout.nodeSize([node.height + node.gapY, node.width + node.gapX]); // not chained: d3 is untyped, a chain will not check
  layout(root);
  const all = root.descendants();
  const top = Math.min(...all.map((n) => n.x)) - node.height / 2;
  const place = (n) => ({ left: n.y, top: n.x - node.height / 2 - top });
  const nodes = all.map((n) => ({ key: pathKey(n.data.path), data: n.data, ...place(n) }));
  const links = root.links().map(({ source, target }) => {
    const [a, b] = [place(source), place(target)];
    return {
      source: pathKey(source.data.path),
      target: pathKey(target.data.path),
      d: linkPath(a.left + node.width, a.top + node.height / 2, b.left, b.top + node.height / 2),
    };
  });
  const width = Math.max(...nodes.map((n) => n.left)) + node.width;
  const height = Math.max(...nodes.map((n) => n.top)) + node.height;
  return { nodes, links, width, height };
}
