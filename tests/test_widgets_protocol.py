"""The message protocol: schema validation and dispatch of the RequestWidget base class."""

import logging
import threading

import ipywidgets
import numpy as np
import pytest

from conceptscope.widgets import HeatmapView
from conceptscope.widgets._protocol import ProtocolError, RequestWidget, Schema, request
from conceptscope.widgets._worker import Worker

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
        {"type": "error", "message": "unknown message type 'zoom' (known: pixel, region, scale)", "id": "c"},
    ]
    assert set(HeatmapView._schemas) == {"pixel", "region"}


def test_ipywidgets_message_handler_is_not_overridden():
    # a method named _handle_msg would silently swallow every message from the front end
    for cls in (RequestWidget, HeatmapView, Probe):
        assert cls._handle_msg is ipywidgets.Widget._handle_msg


# --- work on the worker thread -------------------------------------------------------------------

class Worky(HeatmapView):
    """A view with a background request type that sets a trait."""

    @request("square", work="square", n=int)
    def _on_square(self, n):
        if n < 0:
            raise ProtocolError(f"n must be >= 0; got {n}")
        if n == 13:
            raise RuntimeError("unlucky")
        self.gate.wait(5)
        return {"opacity": min(1.0, n * n / 100)}


@pytest.fixture
def worky():
    view = Worky(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)))
    view.gate = threading.Event()
    view.gate.set()
    view.sent = []
    view.send = lambda content, buffers=None: view.sent.append(content)
    return view


def test_work_requests_reply_when_done_and_set_traits(worky):
    worky.gate.clear()
    worky._on_message(worky, {"type": "square", "id": "a", "n": 5}, [])
    assert worky.busy and worky.sent == []  # the handler returned before the work ran
    worky.gate.set()
    assert worky._worker.wait_idle(5)
    assert worky.opacity == 0.25 and not worky.busy
    assert worky.sent == [{"type": "done", "request": "square", "id": "a"}]


def test_overlapping_work_requests_only_the_latest_is_applied(worky):
    worky.gate.clear()
    for i, n in enumerate((1, 2, 3, 9)):
        worky._on_message(worky, {"type": "square", "id": i, "n": n}, [])
    worky.gate.set()
    assert worky._worker.wait_idle(5)
    assert worky.opacity == 0.81
    assert [m["id"] for m in worky.sent] == [3]


def test_failed_work_sets_error_and_next_success_clears_it(worky, caplog):
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        worky._on_message(worky, {"type": "square", "id": 1, "n": 13}, [])
        assert worky._worker.wait_idle(5)
        worky._on_message(worky, {"type": "square", "id": 2, "n": -1}, [])
        assert worky._worker.wait_idle(5)
    assert worky.sent == [{"type": "error", "message": "RuntimeError: unlucky", "id": 1},
                          {"type": "error", "message": "n must be >= 0; got -1", "id": 2}]
    assert worky.error == "n must be >= 0; got -1" and not worky.busy
    assert "'square' work failed" in caplog.text and "rejected 'square' work" in caplog.text
    worky._on_message(worky, {"type": "square", "id": 3, "n": 2}, [])
    assert worky._worker.wait_idle(5)
    assert worky.error == "" and worky.sent[-1]["type"] == "done"


def test_malformed_work_requests_are_rejected_at_once(worky):
    worky._on_message(worky, {"type": "square", "id": 4, "n": "5"}, [])
    assert worky.sent == [{"type": "error", "message": "'square' message: field 'n' must be int; got str '5'", "id": 4}]
    assert not worky.busy


def test_views_sharing_a_worker_share_its_lock():
    worker = Worker()
    a = HeatmapView(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)), worker=worker)
    b = HeatmapView(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)), worker=worker)
    assert a._lock is b._lock is worker.lock
