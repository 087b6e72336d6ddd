// @ts-check
// Keyboard use of a view's clickable items (concepts, tree nodes, references, classes, hits, tiles): Tab reaches
// them, arrow keys (and Home/End) move between them, Enter or Space does what a click does.

/** Make `item` reachable with Tab and announced as a button (unless it has a role already). */
export function focusable(item) {
  if (!item.hasAttribute("tabindex")) item.setAttribute("tabindex", "0");
  if (!item.hasAttribute("role")) item.setAttribute("role", "button");
  return item;
}

const MOVES = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };

/** A keydown listener for `container`: moves focus among its items matching `selector`, clicks on Enter/Space. */
export function itemKeys(container, selector) {
  return (event) => {
    const item = event.target instanceof Element ? event.target.closest(selector) : null;
    if (!item || !container.contains(item)) return;
    const items = [...container.querySelectorAll(selector)];
    const index = items.indexOf(item);
    let next = null;
    if (event.key in MOVES) next = items[Math.max(0, Math.min(items.length - 1, index + MOVES[event.key]))];
    else if (event.key === "Home") next = items[0];
    else if (event.key === "End") next = items[items.length - 1];
    else if (event.key === "Enter" || event.key === " ") {
      item.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    } else return;
    event.preventDefault();
    next?.focus();
  };
}
