"""Standalone HTML snapshots of views: their current state and the bundled view modules, no kernel needed.

The page embeds each view's synced state (binary traits base64-encoded), the ``snapshot`` bundle, which runs the same
view modules against that saved state (see ``js/snapshot.js``), and the theme's colours (JupyterLab's CSS variables,
which the views read). With ``precompute=`` (an Explorer or a CompositionTree) it also holds the states and replies
recorded by :mod:`.precompute`, so that the precomputed clicks work; values shared by several states are stored once.
Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets

from . import _bundle
from ._protocol import RequestWidget
from .precompute import Precompute, Recording, record, view_state

THEMES = ("light", "dark", "auto")

# The JupyterLab theme variables the views read (js/lib/dom.js), with the values of JupyterLab 4's light and dark
# themes, so that a snapshot looks as the notebook did.
_COLOURS = {
    "light": {"--jp-layout-color1": "#ffffff", "--jp-layout-color3": "#bdbdbd",
              "--jp-ui-font-color1": "rgba(0, 0, 0, 0.87)", "--jp-ui-font-color2": "rgba(0, 0, 0, 0.54)",
              "--jp-border-color0": "#bdbdbd", "--jp-border-color1": "#bdbdbd", "--jp-brand-color1": "#1976d2",
              "--jp-error-color1": "#d32f2f", "color-scheme": "light"},
    "dark": {"--jp-layout-color1": "#212121", "--jp-layout-color3": "#616161",
             "--jp-ui-font-color1": "rgba(255, 255, 255, 0.87)", "--jp-ui-font-color2": "rgba(255, 255, 255, 0.54)",
             "--jp-border-color0": "#616161", "--jp-border-color1": "#616161", "--jp-brand-color1": "#2196f3",
             "--jp-error-color1": "#f44336", "color-scheme": "dark"},
}
_PAGE_CSS = ("body { margin: 16px; font: 13px var(--jp-ui-font-family); background: var(--jp-layout-color1); "
             "color: var(--jp-ui-font-color1); }\n:root { --jp-ui-font-family: system-ui, -apple-system, "
             "'Segoe UI', helvetica, arial, sans-serif; }")

_TEMPLATE = """<!DOCTYPE html>
<html lang="en" data-theme="{theme}">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<div id="cs-root"></div>
<script type="application/json" id="cs-snapshot">{data}</script>
<script type="module">{bundle}</script>
</body>
</html>
"""


def theme_css(theme: str) -> str:
    """The page's CSS for ``theme``: "light", "dark" or "auto" (the reader's prefers-color-scheme)."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(map(repr, THEMES))}; got {theme!r}")

    def rule(colours: dict[str, str]) -> str:
        return ":root { " + " ".join(f"{name}: {value};" for name, value in colours.items()) + " }"

    if theme == "auto":
        colours = rule(_COLOURS["light"]) + "\n@media (prefers-color-scheme: dark) { " + rule(_COLOURS["dark"]) + " }"
    else:
        colours = rule(_COLOURS[theme])
    return f"{colours}\n{_PAGE_CSS}"


def _encode(value: Any) -> Any:
    """JSON-ready state: bytes become {"$bytes": base64}, recursively."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


class _Page:
    """What a page's layout refers to: an id per view (in layout order) and, with ``shared``, a table of the values,
    each stored once (states refer to them as {"$value": index})."""

    def __init__(self, shared: bool = False):
        self.shared = shared
        self.ids: dict[int, int] = {}
        self.values: list[Any] = []
        self._index: dict[str, int] = {}
        self.shown: dict[int, dict[str, int]] = {}  # view id -> {trait: value index} in the layout

    def value(self, value: Any) -> int:
        encoded = _encode(value)
        text = json.dumps(encoded, sort_keys=True, allow_nan=False)
        if text not in self._index:
            self._index[text] = len(self.values)
            self.values.append(encoded)
        return self._index[text]

    def view(self, widget: RequestWidget) -> dict[str, Any]:
        view_id = self.ids.setdefault(id(widget), len(self.ids))
        state = view_state(widget)
        if self.shared:
            self.shown[view_id] = {name: self.value(value) for name, value in state.items()}
            saved: Any = {name: {"$value": index} for name, index in self.shown[view_id].items()}
        else:
            saved = _encode(state)
        return {"view": widget._view, "id": view_id, "local": sorted(widget._view_local), "state": saved}


def layout(widget: Any, page: _Page | None = None) -> dict[str, Any]:
    """The snapshot of a view (its module name, id, the traits it draws itself and its synced state) or of a box of
    views."""
    page = page or _Page()
    if isinstance(widget, RequestWidget):
        return page.view(widget)
    if isinstance(widget, ipywidgets.Box):
        direction = "row" if isinstance(widget, ipywidgets.HBox) else "column"
        return {"box": direction, "children": [layout(child, page) for child in widget.children]}
    raise TypeError(f"cannot snapshot a {type(widget).__name__}: only conceptscope views and boxes of them")


def _precomputed(recording: Recording, page: _Page) -> dict[str, Any]:
    """The recording in the page's form: states as lists (by view id) of view states ({trait: value index}, only the
    traits that some state or the layout shows differently), requests as "view id|type|fields" keys."""
    ids = {name: page.ids[id(view)] for name, view in recording.views.items()}
    keys = list(recording.states)
    indices = {name: [{trait: page.value(value) for trait, value in recording.states[key][name].items()}
                      for key in keys] for name in ids}
    view_states: dict[tuple, int] = {}
    states = [[-1] * len(page.ids) for _ in keys]
    for name, per_state in indices.items():
        shown = page.shown[ids[name]]
        varying = sorted(trait for trait in per_state[0]
                         if len({s[trait] for s in per_state} | {shown.get(trait)}) > 1)
        for number, values in enumerate(per_state):
            saved = tuple((trait, values[trait]) for trait in varying)
            states[number][ids[name]] = view_states.setdefault(saved, len(view_states))
    number = {key: i for i, key in enumerate(keys)}
    return {
        "start": number[recording.start],
        "requests": [f"{ids[view]}|{type_}|{fields}" for view, type_, fields in recording.requests],
        "replies": recording.replies,
        "views": [dict(saved) for saved in view_states],
        "states": states,
        "next": [{str(request): number[key] for request, key in recording.next[state].items()} for state in keys],
    }


def save_html(widget: Any, path: str | Path, title: str = "conceptscope snapshot", *, theme: str = "light",
              precompute: Precompute | Mapping[str, Any] | None = None) -> Path:
    """Write ``widget`` (a view, or a box of views such as the Explorer) as one standalone HTML file in ``theme``
    ("light", "dark" or "auto": the reader's light or dark preference).

    ``precompute`` (an Explorer, or a CompositionTree with ``tree_depth`` only): a
    :class:`~.precompute.Precompute` or a dict of its fields, e.g.
    ``dict(classes=["a", "b"], layers=["features.11", "features.15"], concepts=8, tree_depth=1)``: the clicks on
    those classes, layers, top concepts and tree nodes work in the page (other clicks say they were not
    precomputed). Everything is checked and computed before the file is written."""
    css = theme_css(theme)
    _bundle.require("snapshot")
    recording = None
    if precompute is not None:
        recording = record(widget, precompute)
    page = _Page(shared=recording is not None)
    data = {"layout": layout(widget, page)}
    if recording is not None:
        data |= {"values": page.values, "precomputed": _precomputed(recording, page)}
    bundle = (_bundle.STATIC / "snapshot.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    text = json.dumps(data, allow_nan=False).replace("<", "\\u003c")  # no </script> nor <!-- in the page
    path = Path(path)
    path.write_text(_TEMPLATE.format(title=html.escape(title), theme=theme, css=css, data=text, bundle=bundle),
                    encoding="utf-8")
    return path
