"""CompositionTree: a concept and the lower-layer concepts it is made of, expanded on click."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import traitlets

from ..engine.arguments import is_integer
from ..render import COLORMAPS, encode_png, heatmap_png
from ._protocol import Count, ProtocolError, RequestWidget, request
from .controller import Controller, ModelInput, Picture

if TYPE_CHECKING:
    from ..engine import Explainer


def _finite(tree: dict[str, Any]) -> dict[str, Any]:
    """A tree dict with non-finite numbers (a share of a zero-relevance parent) as None, for JSON."""
    fix = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in tree.items()}
    if tree["children"] is not None:
        fix["children"] = [_finite(child) for child in tree["children"]]
    return fix


def _is_path(path: list) -> bool:
    """Whether ``path`` is a list of [layer name, channel] pairs."""
    return all(isinstance(step, list) and len(step) == 2 and isinstance(step[0], str) and is_integer(step[1])
               and step[1] >= 0 for step in path)


class CompositionTree(RequestWidget):
    """The composition tree of concept (``layer``, ``channel``): sub-concepts in lower layers with
    their relevance shares. Clicking a node expands it (computing its ``top`` sub-concepts), selects
    it (``selected``, its path; the ``on("select", callback)`` callbacks get the path of every newly
    selected node) and shows its conditional heatmap.

    Give ``explainer`` and ``image`` (a model input, C x H x W), or the ``controller`` of an explorer.
    """

    _view = "tree"

    tree = traitlets.Dict(help="The tree computed so far: {layer, channel, relevance, share, path, children}.").tag(
        sync=True)
    selected = traitlets.List(help="Path [[layer, channel], ...] of the selected node, or [].").tag(sync=True)
    image_png = traitlets.Bytes(help="The explained picture (PNG).").tag(sync=True)
    heatmap_png = traitlets.Bytes(help="Conditional heatmap of the selected node (PNG).").tag(sync=True)
    top = Count(5, help="Sub-concepts per expanded node.").tag(sync=True)
    colormap = traitlets.Enum(COLORMAPS, default_value=COLORMAPS[0], help="Colormap of the heatmap.")

    def __init__(self, explainer: Explainer | None = None, image: ModelInput | None = None, layer: str | None = None,
                 channel: int | None = None, *, target: int | None = None, top: int = 5,
                 picture: Picture | None = None, classes: Sequence[str] | None = None,
                 controller: Controller | None = None, **kwargs: Any):
        self.controller = controller or Controller(explainer, image, target, picture, classes)
        self._root: tuple[str, int] | None = None  # the root asked for last (the tree shown may be older)
        super().__init__(top=top, **kwargs)
        self.controller.subscribe(self._reroot)
        if layer is not None and channel is not None:
            self.set_root(layer, channel)

    def figure(self, ax: Any = None, labels: Any = None, depth: int = 2) -> Any:
        """A matplotlib figure of the tree shown now, ``depth`` levels deep (computed where not yet expanded)."""
        from .. import plot

        if not self.tree:
            return plot.message("no concept selected: click a concept first", ax)
        root = self.controller.tree_node([[self.tree["layer"], self.tree["channel"]]], self.top)
        return plot.tree(root, ax, labels=labels, depth=depth)

    def set_root(self, layer: str, channel: int, delay: float = 0.0) -> None:
        """Show the tree of concept (``layer``, ``channel``), its root selected (computed after ``delay`` s)."""
        path = [[layer, int(channel)]]
        with self._lock:
            self._root = (layer, int(channel))
            self.push("tree", lambda: {"image_png": encode_png(self.controller.subject.picture), **self._state(path)},
                      delay=delay)

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict) -> list:
        path = proposal["value"]
        if path and not _is_path(path):
            raise traitlets.TraitError(f"selected must be [] or a path [[layer, channel], ...]; got {path!r}")
        return path

    @traitlets.observe("selected")
    def _selected_changed(self, change: dict) -> None:
        if change["new"]:
            self._emit("select", change["new"])

    def _reroot(self) -> None:
        """The input, target or model changed: the root asked for last, recomputed."""
        if self._root is not None:
            self.set_root(*self._root)

    def _state(self, path: list[list[Any]]) -> dict[str, Any]:
        controller = self.controller
        node = controller.tree_node(path, self.top)
        node.expand(1)  # its children, computed once and kept in the cached tree
        root = controller.composition(*path[0], self.top)
        return {"tree": controller.labelled_tree(_finite(root.to_dict())), "selected": path,
                "heatmap_png": heatmap_png(controller.path_heatmap(path, self.top), self.colormap, alpha=True)}

    @request("expand", work="tree", path=list)
    def _on_expand(self, path: list) -> dict[str, Any]:
        if not path or not _is_path(path):
            raise ProtocolError(f"path must be a non-empty list of [layer, channel] pairs; got {path!r}")
        if not self.tree or path[0] != [self.tree["layer"], self.tree["channel"]]:
            raise ProtocolError(f"path {path!r} does not start at the tree's root")
        return self._state(path)
