"""Clicks a static snapshot can answer: an explorer's states for chosen classes, layers and concepts, and the requests
that lead from one to the next.

``save_html(explorer, path, precompute=...)`` drives a twin of the explorer (the same explainer, input, atlas, labels
and settings, with views nobody sees: the explorer on screen is left as it is) through the views' own request
handlers, with the messages the views send, and records after each request the synced state of every view. A state
is (class explained, layer of the concept list, concept path shown); the requests between states follow the
explorer's wiring: another class keeps the path's root, another layer changes only the concept list, a concept starts
a path, a tree node extends it. A composition tree alone is driven the same way through its nodes. The page answers
a request from this table (js/lib/static_model.js): the traits in which the next state differs from the one shown are
set and the reply the kernel sent is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import ipywidgets

from ..engine.arguments import count, short
from .controller import Controller
from .tree import CompositionTree

Explorer = Any  # an Explorer (not imported: the explorer imports the snapshot, which imports this module)

ClassKey = tuple[int, int]  # (target, versus): versus -1 for a class alone, else a contrast
Path = tuple[tuple[str, int], ...]  # the concept path shown, () for none
StateKey = tuple[ClassKey, str, Path]
Request = tuple[str, str, str]  # (view: an Explorer attribute, request type, its fields as canonical JSON)

VIEWS = ("target", "heatmap", "concepts", "tree", "gallery", "search")  # the Explorer's views, by attribute
_NOT_STATE = ("layout", "tabbable", "tooltip")


def view_state(view: Any) -> dict[str, Any]:
    """The synced state of ``view`` a snapshot keeps (not the ipywidgets layout traits)."""
    return {k: v for k, v in view.get_state().items() if not k.startswith("_") and k not in _NOT_STATE}


def fields_json(fields_: Mapping[str, Any]) -> str:
    """A request's fields as canonical JSON (sorted keys, no spaces), as js/lib/static_model.js writes them."""
    return json.dumps(fields_, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Precompute:
    """What a snapshot of an explorer answers without a kernel: switching to each of ``classes`` (indices or names;
    default: the class explained now) and each of ``layers`` (default: the concept list's layer), clicking each of the
    top ``concepts`` of each class and layer (default: all the concept list shows; their conditional heatmaps,
    references and composition trees) and the nodes of their trees ``tree_depth`` levels deep (0: the root only). The
    class and layer shown now are always included. For a CompositionTree alone only ``tree_depth`` applies."""

    classes: Sequence[int | str] | None = None
    layers: Sequence[str] | None = None
    concepts: int | None = None
    tree_depth: int = 1

    @classmethod
    def of(cls, spec: Precompute | Mapping[str, Any]) -> Precompute:
        """``spec`` as a Precompute (from a dict of its fields), or a clear error."""
        if isinstance(spec, Precompute):
            return spec
        if not isinstance(spec, Mapping):
            raise TypeError(f"precompute must be a Precompute or a dict such as dict(classes=[...], layers=[...], "
                            f"concepts=8, tree_depth=1); got {type(spec).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = [key for key in spec if key not in known]
        if unknown:
            raise TypeError(f"precompute has no field {unknown[0]!r}; its fields: {', '.join(known)}")
        return cls(**spec)


@dataclass
class Plan:
    """A Precompute checked against an explorer: classes as (target, versus) keys, layers, counts."""

    classes: list[ClassKey]
    layers: list[str]
    concepts: int
    tree_depth: int


def plan(explorer: Explorer, spec: Precompute | Mapping[str, Any]) -> Plan:
    """Check ``spec`` against ``explorer`` before anything is computed: known classes and layers, sensible counts."""
    if not (isinstance(explorer, ipywidgets.Box) and isinstance(getattr(explorer, "controller", None), Controller)):
        raise TypeError(f"precompute= needs an Explorer or a CompositionTree (their clicks are what is "
                        f"precomputed); got a {type(explorer).__name__}: save it without precompute=")
    spec = Precompute.of(spec)
    names = list(explorer.target.classes)
    shown: ClassKey = (explorer.target.target, explorer.target.versus)
    classes = [shown] + [(_class_index(c, names), -1) for c in _listed(spec.classes, "classes")]
    layers = [explorer.concepts.layer] + [_layer(layer, explorer.concepts.layers) for layer in
                                          _listed(spec.layers, "layers")]
    concepts = count("precompute concepts", explorer.concepts.k if spec.concepts is None else spec.concepts)
    if concepts > explorer.concepts.k:
        raise ValueError(f"precompute concepts={concepts}, but the concept list shows only {explorer.concepts.k}: "
                         f"ask for at most {explorer.concepts.k}, or open the explorer with k={concepts}")
    return Plan(list(dict.fromkeys(classes)), list(dict.fromkeys(layers)), concepts,
                count("precompute tree_depth", spec.tree_depth, minimum=0))


def _listed(values: Any, what: str) -> list:
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"precompute {what} must be a non-empty list (or None: the one shown now); got {short(values)}")
    return list(values)


def _class_index(value: Any, names: list[str]) -> int:
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"precompute: unknown class {value!r}; classes: {', '.join(map(repr, names))}")
        return names.index(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
        raise ValueError(f"precompute: class {short(value)} is neither a class index (0..{len(names) - 1}) nor a "
                         f"class name")
    return int(value)


def _layer(value: Any, layers: list[str]) -> str:
    if value not in layers:
        raise ValueError(f"precompute: unknown layer {short(value)}; layers: {', '.join(layers)}")
    return value


@dataclass
class Recording:
    """The states of a twin explorer (``{key: {view: synced state}}``; ``views``: the saved widget's views by name),
    the requests between them, the reply the kernel sent to each (without its id), and for each state the state each
    request leads to (``next``: ``{key: {request index: key}}``); ``start`` is the state shown now."""

    start: StateKey
    views: dict[str, Any] = field(default_factory=dict)
    states: dict[StateKey, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    next: dict[StateKey, dict[int, StateKey]] = field(default_factory=dict)


def record(widget: Explorer | CompositionTree, spec: Precompute | Mapping[str, Any],
           timeout: float = 600.0) -> Recording:
    """Precompute ``spec`` for ``widget``, an Explorer or a CompositionTree (see the module docstring); the widget
    itself is not changed."""
    if isinstance(widget, CompositionTree):
        checked = _tree_plan(widget, spec)
        if not widget._worker.wait_idle(timeout):
            raise TimeoutError("the tree is still computing; save the snapshot when it is done")
        recording = _TreeDriver(_tree_twin(widget, timeout), checked, timeout).run()
        recording.views = {"tree": widget}
        return recording
    checked = plan(widget, spec)
    if not widget.wait(timeout):
        raise TimeoutError("the explorer is still computing; save the snapshot when it is done")
    recording = _Driver(_twin(widget, timeout), checked, timeout).run()
    recording.views = {name: getattr(widget, name) for name in recording.states[recording.start]}
    return recording


def _tree_plan(tree: CompositionTree, spec: Precompute | Mapping[str, Any]) -> Plan:
    """A Precompute for a tree alone: its tree_depth only, and a tree shown."""
    spec = Precompute.of(spec)
    given = [name for name in ("classes", "layers", "concepts") if getattr(spec, name) is not None]
    if given:
        raise ValueError(f"a composition tree alone precomputes its nodes only: give tree_depth, not {given[0]}")
    if not tree.tree:
        raise ValueError("the tree shows no concept yet: set_root(layer, channel) first")
    return Plan([], [], 0, count("precompute tree_depth", spec.tree_depth, minimum=0))


def _tree_twin(tree: CompositionTree, timeout: float) -> CompositionTree:
    """A tree like ``tree`` now (input, target, labels, root, selected node), on its own controller, nobody watching."""
    controller, subject = tree.controller, tree.controller.subject
    twin = type(tree)(controller=Controller(controller.explainer, subject.image, subject.target, subject.picture,
                                            controller.classes, labels=controller.labels),
                      top=tree.top, scale=tree.scale)
    twin.close()  # no comm: its state changes go nowhere
    twin.colormap = tree.colormap
    twin.set_root(tree.tree["layer"], tree.tree["channel"])
    if len(tree.selected) > 1:
        twin._worker.wait_idle(timeout)
        twin._on_message(twin, {"type": "expand", "id": "twin", "path": tree.selected}, [])
    if not twin._worker.wait_idle(timeout):
        raise TimeoutError("precomputing the snapshot: the tree's twin took too long to start")
    return twin


def _twin(explorer: Explorer, timeout: float) -> Explorer:
    """An explorer like ``explorer`` now (input, target, layer, labels, drawing settings, concept path), without a
    semantic search (a snapshot cannot answer searches) and without delays (nobody watches it)."""
    controller, subject = explorer.controller, explorer.controller.subject
    twin = type(explorer)(controller.explainer, subject.image, atlas=None if explorer.gallery is None else
                    explorer.gallery.atlas, target=subject.target, classes=controller.classes, picture=subject.picture,
                    layer=explorer.concepts.layer, k=explorer.concepts.k, labels=controller.labels,
                    scale=explorer.heatmap.scale)
    for widget in [*twin.views, *twin.children, twin]:
        widget.close()  # no comm: its state changes go nowhere
    twin.secondary_delay = 0.0
    for name in ("colormap", "opacity", "overlay", "contour_percent"):
        setattr(twin.heatmap, name, getattr(explorer.heatmap, name))
    twin.target.k, twin.tree.top = explorer.target.k, explorer.tree.top
    if explorer.gallery is not None:
        for name in ("mode", "crop", "page_size"):
            setattr(twin.gallery, name, getattr(explorer.gallery, name))
    twin.heatmap.region = list(explorer.heatmap.region)  # the concept list follows it
    path = explorer.path
    if path:
        twin.select(*path[0])
        if len(path) > 1:
            twin.wait(timeout)
            twin.tree._on_message(twin.tree, {"type": "expand", "id": "twin", "path": path}, [])
    if not twin.wait(timeout):
        raise TimeoutError("precomputing the snapshot: the explorer's twin took too long to start")
    twin.concepts.selected = dict(explorer.concepts.selected)
    twin.heatmap.show = explorer.heatmap.show
    return twin


class _Driver:
    """Drives a twin explorer through the planned states with the views' own requests, recording each state."""

    def __init__(self, twin: Explorer, checked: Plan, timeout: float):
        self.twin, self.plan, self.timeout = twin, checked, timeout
        self.views = self.views_of(twin)
        self.replies: dict[Request, dict[str, Any]] = {}
        self.roots: dict[ClassKey, dict[str, list[tuple[str, int]]]] = {}  # the clickable top concepts
        self.trees: dict[ClassKey, dict[tuple[str, int], list[Path]]] = {}  # the clickable nodes of each root

    @staticmethod
    def views_of(twin: Any) -> dict[str, Any]:
        return {name: getattr(twin, name) for name in VIEWS if getattr(twin, name) is not None}

    def wait(self) -> bool:
        return self.twin.wait(self.timeout)

    def key(self) -> StateKey:
        twin = self.twin
        return ((twin.target.target, twin.target.versus), twin.concepts.layer,
                tuple((layer, int(channel)) for layer, channel in twin.path))

    def ask(self, view: str, type_: str, **fields_: Any) -> None:
        """Send a view's request as the view would, wait for its work, keep its reply; any failure raises."""
        widget = self.views[view]
        widget._on_message(widget, {"type": type_, "id": "precompute", **fields_}, [])
        if not self.wait():
            raise TimeoutError(f"precomputing the snapshot: {type_} {fields_} took longer than {self.timeout} s")
        reply = dict(widget.last_result)
        failed = [f"{name}: {v.error}" for name, v in self.views.items() if v.error]
        if reply.get("type") == "error" or failed:
            raise RuntimeError(f"precomputing the snapshot failed at the {view} view's {type_!r} request {fields_}: "
                               f"{reply.get('message') if reply.get('type') == 'error' else '; '.join(failed)}")
        del reply["id"]
        self.replies[(view, type_, fields_json(fields_))] = reply

    def enter_class(self, key: ClassKey) -> None:
        target, versus = key
        if versus == -1:
            self.ask("target", "target", target=target)
        else:
            self.ask("target", "contrast", target=target, versus=versus)

    def show(self, path: Path) -> None:
        """Show concept path ``path``: a click on its root in the concept list (and on the root in the tree), or on
        its node in the tree, whose root is shown."""
        steps = [list(step) for step in path]
        if len(path) == 1:
            self.ask("concepts", "select", layer=path[0][0], channel=path[0][1])
        self.ask("tree", "expand", path=steps)

    def run(self) -> Recording:
        plan_, twin = self.plan, self.twin
        start = self.key()
        recording = Recording(start)
        states = recording.states
        states[start] = self.state()
        for key in plan_.classes:  # the concept lists (and, while no concept is shown, the states without one)
            self.enter_class(key)
            for layer in plan_.layers:
                self.ask("concepts", "layer", layer=layer)
                shown = [(c["layer"], int(c["channel"])) for c in twin.concepts.concepts[:plan_.concepts]]
                self.roots.setdefault(key, {})[layer] = shown
                if not start[2]:
                    states.setdefault(self.key(), self.state())
        every_root = {root for lists in self.roots.values() for shown in lists.values() for root in shown}
        every_root |= {start[2][0]} if start[2] else set()
        for key in plan_.classes:
            self.enter_class(key)
            own = {root for shown in self.roots[key].values() for root in shown}
            trees = self.trees[key] = {}
            for layer in plan_.layers:
                self.ask("concepts", "layer", layer=layer)
                for root in sorted(every_root):
                    paths = self.nodes(root) if root in own else [(root,)]
                    if key == start[0] and start[2] and start[2][0] == root and start[2] not in paths:
                        paths.append(start[2])
                    trees[root] = paths
                    for path in paths:
                        self.show(path)
                        states[self.key()] = self.state()  # also the start's, now with its tree computed further
        self.link(recording)
        return recording

    def nodes(self, root: tuple[str, int]) -> list[Path]:
        """The paths of ``root``'s tree nodes down to the planned depth, the tree computed one level further (what
        clicking each of them computes), so that every state shows the same tree."""
        tree = self.views["tree"]
        node = tree.controller.tree_node([list(root)], tree.top)
        node.expand(self.plan.tree_depth + 1)
        paths, level = [], [node]
        for _ in range(self.plan.tree_depth + 1):
            paths += [tuple((layer, int(channel)) for layer, channel in n.path) for n in level]
            level = [child for n in level for child in n.children]
        return paths

    def state(self) -> dict[str, dict[str, Any]]:
        return {name: view_state(view) for name, view in self.views.items()}

    def link(self, recording: Recording) -> None:
        """For each state, the state each precomputed request leads to (following the explorer's wiring)."""
        index: dict[Request, int] = {}
        for request, reply in self.replies.items():
            index[request] = len(recording.requests)
            recording.requests.append(request)
            recording.replies.append(reply)

        def go(links: dict[int, StateKey], request: Request, key: StateKey) -> None:
            if request in index and key in recording.states:
                links[index[request]] = key

        for (cls, layer, path) in recording.states:
            links = recording.next[(cls, layer, path)] = {}
            for other in self.plan.classes:
                go(links, self.class_request(other), (other, layer, path[:1]))
            for other in self.plan.layers:
                go(links, ("concepts", "layer", fields_json({"layer": other})), (cls, other, path))
            for root in self.roots.get(cls, {}).get(layer, []):
                go(links, ("concepts", "select", fields_json({"layer": root[0], "channel": root[1]})),
                   (cls, layer, (root,)))
            for node in self.trees.get(cls, {}).get(path[0], []) if path else []:
                go(links, ("tree", "expand", fields_json({"path": [list(step) for step in node]})),
                   (cls, layer, node))

    @staticmethod
    def class_request(key: ClassKey) -> Request:
        target, versus = key
        if versus == -1:
            return "target", "target", fields_json({"target": target})
        return "target", "contrast", fields_json({"target": target, "versus": versus})


class _TreeDriver(_Driver):
    """Drives a twin composition tree through its nodes down to the planned depth (states: the selected node)."""

    NO_CLASS: ClassKey = (-1, -1)  # a tree alone has no class or layer to switch

    @staticmethod
    def views_of(twin: Any) -> dict[str, Any]:
        return {"tree": twin}

    def wait(self) -> bool:
        return self.twin._worker.wait_idle(self.timeout)

    def key(self) -> StateKey:
        return self.NO_CLASS, "", tuple((layer, int(channel)) for layer, channel in self.twin.selected)

    def run(self) -> Recording:
        start = self.key()
        recording = Recording(start)
        recording.states[start] = self.state()
        root = start[2][0]
        paths = self.nodes(root)
        paths += [] if start[2] in paths else [start[2]]
        self.trees[self.NO_CLASS] = {root: paths}
        for path in paths:
            self.ask("tree", "expand", path=[list(step) for step in path])
            recording.states[self.key()] = self.state()  # also the start's, now with its tree computed further
        self.link(recording)
        return recording
