"""Standalone HTML snapshots of views: their current state and the bundled view modules, no kernel needed.

The page embeds each view's synced state (binary traits base64-encoded) and the ``snapshot``
bundle, which runs the same view modules against that saved state (see ``js/snapshot.js``).
Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import ipywidgets

from . import _bundle
from ._protocol import RequestWidget

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>body {{ font: 13px sans-serif; margin: 16px; }}</style>
</head>
<body>
<div id="cs-root"></div>
<script type="application/json" id="cs-snapshot">{data}</script>
<script type="module">{bundle}</script>
</body>
</html>
"""


def _encode(value: Any) -> Any:
    """JSON-ready state: bytes become {"$bytes": base64}, recursively."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def layout(widget: Any) -> dict[str, Any]:
    """The snapshot of a view (its module name and synced state) or of a box of views."""
    if isinstance(widget, RequestWidget):
        state = {k: v for k, v in widget.get_state().items()
                 if not k.startswith("_") and k not in ("layout", "tabbable", "tooltip")}
        return {"view": widget._view, "state": _encode(state)}
    if isinstance(widget, ipywidgets.Box):
        direction = "row" if isinstance(widget, ipywidgets.HBox) else "column"
        return {"box": direction, "children": [layout(child) for child in widget.children]}
    raise TypeError(f"cannot snapshot a {type(widget).__name__}: only conceptscope views and boxes of them")


def save_html(widget: Any, path: str | Path, title: str = "conceptscope snapshot") -> Path:
    """Write ``widget`` (a view, or a box of views such as the Explorer) as one standalone HTML file."""
    _bundle.require("snapshot")
    bundle = (_bundle.STATIC / "snapshot.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    data = json.dumps(layout(widget), allow_nan=False).replace("<", "\\u003c")  # no </script> nor <!-- in the page
    path = Path(path)
    path.write_text(_TEMPLATE.format(title=html.escape(title), data=data, bundle=bundle), encoding="utf-8")
    return path
