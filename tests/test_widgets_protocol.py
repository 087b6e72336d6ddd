"""The message protocol: schema validation and dispatch of the RequestWidget base class."""

import ipywidgets
import numpy as np
import pytest

from conceptscope.widgets import HeatmapView
from conceptscope.widgets._protocol import ProtocolError, RequestWidget, Schema, request

SCHEMA = Schema("probe", {"weight": float, "name": str, "key": (int, str), "items": list, "opts": dict})
GOOD = {"type": "probe", "id": 1, "weight": 2, "name": "n", "key": "k", "items": [], "opts": {}}


def test_valid_message_yields_declared_fields_only():
    assert SCHEMA.validate({**GOOD, "extra": 1}) == {k: v for k, v in GOOD.items() if k != "type"}
    assert SCHEMA.validate({**GOOD, "weight": 0.5, "key": 3})["weight"] == 0.5


@pytest.mark.parametrize(
    "change, error",
    [
        ({"weight": True}, "field 'weight' must be float; got bool True"),
        ({"weight": "1"}, "field 'weight' must be float; got str '1'"),
        ({"key": 1.5}, "field 'key' must be int or str; got float 1.5"),
        ({"items": {}}, "field 'items' must be list; got dict {}"),
        ({"id": [1]}, "field 'id' must be int or str; got list [1]"),
    ],
)
def test_wrong_types_are_named(change, error):
    with pytest.raises(ProtocolError, match="^'probe' message: " + error.replace("[", r"\[").replace("]", r"\]")):
        SCHEMA.validate({**GOOD, **change})


def test_missing_fields_are_named():
    with pytest.raises(ProtocolError, match="'probe' message lacks the field 'opts'"):
        SCHEMA.validate({k: v for k, v in GOOD.items() if k != "opts"})
    with pytest.raises(ProtocolError, match="lacks the field 'id'"):
        SCHEMA.validate({k: v for k, v in GOOD.items() if k != "id"})


class Probe(HeatmapView):
    """A subclass adds a request type and inherits the pixel handler."""

    @request("scale", factor=float)
    def _on_scale(self, factor):
        return {"type": "scaled", "value": factor * 2}


def test_subclass_handlers_are_collected_and_dispatched():
    view = Probe(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)))
    sent = []
    view.send = lambda content, buffers=None: sent.append(content)
    view._on_message(view, {"type": "scale", "id": "a", "factor": 3}, [])
    view._on_message(view, {"type": "pixel", "id": "b", "x": 1, "y": 1}, [])
    view._on_message(view, {"type": "zoom", "id": "c"}, [])
    assert sent == [
        {"type": "scaled", "value": 6, "id": "a"},
        {"type": "pixel_result", "x": 1, "y": 1, "value": 1.0, "id": "b"},
        {"type": "error", "message": "unknown message type 'zoom' (known: pixel, scale)", "id": "c"},
    ]
    assert set(HeatmapView._schemas) == {"pixel"}


def test_ipywidgets_message_handler_is_not_overridden():
    # a method named _handle_msg would silently swallow every message from the front end
    for cls in (RequestWidget, HeatmapView, Probe):
        assert cls._handle_msg is ipywidgets.Widget._handle_msg
