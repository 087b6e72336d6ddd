"""Request/reply messages between a view and Python: typed validation and dispatch.

A view sends ``{"type": <request type>, "id": <request id>, ...fields}`` with ``model.send``.
:class:`RequestWidget` checks the message against the schema its handler declared with
:func:`request`, calls the handler and sends back the handler's reply with the same ``id``.
Malformed messages are rejected and exceptions inside handlers are caught: both are logged on
``logging.getLogger("conceptscope.widgets")`` and answered with ``{"type": "error", "id", "message"}``
(when the message carried a usable id), and the widget keeps working.

Messages may arrive on a kernel subshell thread while cells run: subclasses guard their state
with ``self._lock``. Heavy work runs on the widget's :class:`~._worker.Worker` thread: a handler
declared with ``work=<key>`` runs there (a newer request of the same key supersedes it) and returns
the trait values to show; :meth:`RequestWidget.push` does the same for work not asked for by the
view (e.g. another view's selection). While such work is pending the synced ``busy`` trait is true;
a failure sets the synced ``error`` trait (cleared by the next success), which the view shows.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import anywidget
import numpy as np
import traitlets

from ..engine.arguments import count, short
from . import _bundle
from ._worker import Worker

log = logging.getLogger("conceptscope.widgets")

RequestId = int | str


class ProtocolError(ValueError):
    """A message that breaks the protocol: rejected with a reason, not a crash."""


def _matches(value: object, expected: type) -> bool:
    if isinstance(value, bool):  # JSON true/false are not numbers here
        return expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


@dataclass(frozen=True)
class Schema:
    """Required fields of one request type and their JSON types (int, float, str, bool, list, dict)."""

    type: str
    fields: Mapping[str, type | tuple[type, ...]]
    work: str | None = None

    def validate(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The declared fields of ``message`` (extra fields are ignored); ProtocolError if wrong."""
        args = {}
        for name, expected in {"id": (int, str), **self.fields}.items():
            if name not in message:
                raise ProtocolError(f"{self.type!r} message lacks the field {name!r}")
            value = message[name]
            options = expected if isinstance(expected, tuple) else (expected,)
            if not any(_matches(value, t) for t in options):
                wanted = " or ".join(t.__name__ for t in options)
                raise ProtocolError(
                    f"{self.type!r} message: field {name!r} must be {wanted}; "
                    f"got {type(value).__name__} {short(value)}"
                )
            args[name] = value
        return args


def request(type_: str, *, work: str | None = None, **fields: type | tuple[type, ...]) -> Callable:
    """Declare a method as the handler of ``{"type": type_, "id": ..., **fields}`` messages.

    The method receives the fields as keyword arguments and returns the reply content
    (a dict with its own ``"type"``); the request id is added to it. With ``work=<key>`` the
    method runs on the worker thread instead and returns the trait values to set (see
    :meth:`RequestWidget.push`); the reply is ``{"type": "done", "request": work}``.
    """
    schema = Schema(type_, fields, work)

    def mark(method: Callable) -> Callable:
        method._cs_schema = schema
        return method

    return mark


def checked(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check(value)`` with its ValueError/TypeError raised as a ``traitlets.TraitError`` (for trait validators)."""
    def run(value: Any) -> Any:
        try:
            return check(value)
        except (ValueError, TypeError) as exc:
            raise traitlets.TraitError(str(exc)) from None
    return run


def check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, hint: str = "") -> float:
    """``value`` as a float in [``low``, ``high``], or a ValueError that says what is expected (``hint``: what the
    number means, e.g. " (1: normal size)"). Booleans are refused."""
    bounds = f" in [{low:g}, {high:g}]" if math.isfinite(low) or math.isfinite(high) else ""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number{bounds}{hint}; got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be a number{bounds}{hint}; got {value!r}")
    return float(value)


class Real(traitlets.Float):
    """A float trait in [``low``, ``high``] (unbounded by default) that refuses booleans (traitlets' Float would take
    True as 1.0), with :func:`check_number`'s message."""

    def __init__(self, default_value: float, low: float = -math.inf, high: float = math.inf, hint: str = "",
                 **kwargs: Any) -> None:
        self.low, self.high, self.hint = low, high, hint
        super().__init__(default_value, **kwargs)

    def validate(self, obj: Any, value: Any) -> float:
        return checked(lambda v: check_number(self.name, v, self.low, self.high, self.hint))(value)


class Count(traitlets.Int):
    """An int trait >= ``minimum`` that refuses booleans, with the engine's message (e.g. "k must be an integer >= 1;
    got 0")."""

    def __init__(self, default_value: int = 1, minimum: int = 1, **kwargs: Any) -> None:
        self.minimum = minimum
        super().__init__(default_value, **kwargs)

    def validate(self, obj: Any, value: Any) -> int:
        return checked(lambda v: count(self.name, v, self.minimum))(value)


def _request_id(message: object) -> RequestId | None:
    """The message's id when it has a usable one (int or str), else None."""
    rid = message.get("id") if isinstance(message, Mapping) else None
    return rid if _matches(rid, int) or isinstance(rid, str) else None


class RequestWidget(anywidget.AnyWidget):
    """Base of the views: loads the view's bundle, dispatches typed requests, replies, reports errors.

    Subclasses set ``_view`` (the name of ``js/<view>.js``) and decorate handlers with :func:`request`.
    """

    _view: ClassVar[str]
    _view_sets: ClassVar[frozenset[str]] = frozenset()  # the synced traits the view itself may set
    _view_local: ClassVar[frozenset[str]] = frozenset()  # those of them it draws without Python (static snapshots)
    _schemas: ClassVar[dict[str, tuple[Schema, str]]] = {}

    last_result = traitlets.Dict(help="The last reply sent to the view (a result or an error).")
    busy = traitlets.Bool(False, help="True while work for this view is pending.").tag(sync=True)
    error = traitlets.Unicode("", help="The last failure of the view's work ('' after a success).").tag(sync=True)
    scale = Real(1.0, low=0.25, high=4, hint=" (1: normal size)",
                 help="How much larger than normal the view is drawn (e.g. 1.5 on a projector).").tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "_view" in cls.__dict__:
            cls._esm = _bundle.esm(cls._view)
        super().__init_subclass__(**kwargs)
        cls._schemas = {
            attr._cs_schema.type: (attr._cs_schema, name)
            for klass in reversed(cls.__mro__)
            for name, attr in vars(klass).items()
            if hasattr(attr, "_cs_schema")
        }

    def __init__(self, *, worker: Worker | None = None, **kwargs: Any) -> None:
        _bundle.require(self._view)
        self._worker = worker or Worker(f"conceptscope-{self._view}")
        self._lock = self._worker.lock
        self._pending: dict[Hashable, object] = {}
        self._callbacks: dict[str, list[Callable]] = {}
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    def on(self, event: str, callback: Callable) -> None:
        """Call ``callback(*args)`` each time the view reports ``event`` (each view's docstring names its events, e.g.
        a click: "select", "pick"; a click repeating the last one counts too); its exceptions are shown in the view.
        The one way to follow a view: the explorer wires its views with it."""
        self._callbacks.setdefault(event, []).append(callback)

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self._callbacks.get(event, ()):
            callback(*args)

    def push(self, key: Hashable, compute: Callable[[], Mapping[str, Any] | None],
             request_id: RequestId | None = None, delay: float = 0.0) -> None:
        """Run ``compute`` on the worker (after ``delay`` seconds) and set the traits it returns, unless a
        newer ``key`` job came.

        ``busy`` is true until then; a failure is logged and shown (``error``); with a
        ``request_id`` the view's request is answered with ``done`` or ``error``.
        """
        token = object()
        with self._lock:
            self._pending[key] = token
            self.busy = True
        finish = functools.partial(self._finish, key, token, request_id)
        self._worker.submit((id(self), key), compute, finish, delay)

    def _finish(self, key: Hashable, token: object, request_id: RequestId | None,
                state: Mapping[str, Any] | None, exc: BaseException | None) -> None:
        """Apply a job's result (on the worker thread, under the shared lock)."""
        if self._pending.get(key) is token:
            del self._pending[key]
        if exc is None:
            with self.hold_sync():
                for name, value in (state or {}).items():
                    setattr(self, name, value)
                self.error = ""
                self.busy = bool(self._pending)
            if request_id is not None:
                self._reply(request_id, {"type": "done", "request": key})
            return
        if isinstance(exc, ProtocolError):
            log.warning("%s: rejected %r work: %s", type(self).__name__, key, exc)
            message = str(exc)
        else:
            log.error("%s: %r work failed", type(self).__name__, key, exc_info=exc)
            message = f"{type(exc).__name__}: {exc}"
        with self.hold_sync():
            self.error = message
            self.busy = bool(self._pending)
        if request_id is not None:
            self._reply(request_id, {"type": "error", "message": message})

    def _on_message(self, _widget: object, content: object, _buffers: object) -> None:
        """Entry point of every custom message from the view (kernel shell or subshell thread)."""
        request_id = _request_id(content)
        try:
            schema, method = self._route(content)
            args = schema.validate(content)
        except ProtocolError as exc:
            self._reject(request_id, content, exc)
            return
        del args["id"]
        handler = getattr(self, method)
        with self._lock:
            if schema.work is None:
                self._handle(request_id, handler, args)
            else:
                self.push(schema.work, functools.partial(handler, **args), request_id)

    def _route(self, content: object) -> tuple[Schema, str]:
        if not isinstance(content, Mapping) or not isinstance(content.get("type"), str):
            raise ProtocolError("a message must be a JSON object with a string field 'type'")
        try:
            return self._schemas[content["type"]]
        except KeyError:
            known = ", ".join(sorted(self._schemas)) or "none"
            raise ProtocolError(f"unknown message type {short(content['type'])} (known: {known})") from None

    def _handle(self, request_id: RequestId, handler: Callable, args: dict[str, Any]) -> None:
        """Run one valid request and reply with its result or its error."""
        try:
            reply = handler(**args)
        except ProtocolError as exc:
            self._reject(request_id, {"id": request_id, **args}, exc)
        except Exception as exc:
            log.exception("%s: request %r failed", type(self).__name__, request_id)
            self._reply(request_id, {"type": "error", "message": f"{type(exc).__name__}: {exc}"})
        else:
            self._reply(request_id, reply)

    def set_state(self, sync_data: Mapping[str, Any]) -> None:
        """State sent by the view: only the traits in ``_view_sets`` (the controls the view owns, e.g. opacity), each
        checked as when set from Python (its validator makes the same checks as the corresponding request); the rest
        is asked for with requests. A refused value is logged (shortened), shown as the view's ``error`` and sent
        back as it was, so that view and kernel agree again."""
        for name, value in sync_data.items():
            try:
                if name not in self._view_sets:
                    owned = ", ".join(sorted(self._view_sets)) or "none"
                    raise ProtocolError(f"the view may not set {name!r} (it sets only: {owned})")
                super().set_state({name: value})
            except (traitlets.TraitError, ValueError, TypeError) as exc:
                log.warning("%s: refused %s=%s from the view: %s", type(self).__name__, name, short(value),
                            str(exc)[:500])
                self.error = f"{name}: {exc}"
                self.send_state(name)

    def _reject(self, request_id: RequestId | None, content: object, exc: ProtocolError) -> None:
        log.warning("%s: rejected message %s: %s", type(self).__name__, short(content, 500), str(exc)[:500])
        if request_id is not None:
            self._reply(request_id, {"type": "error", "message": str(exc)})

    def _reply(self, request_id: RequestId, content: Mapping[str, Any]) -> None:
        """Send ``content`` with the request id to the view and keep it in ``last_result``."""
        reply = {**content, "id": request_id}
        self.last_result = reply
        self.send(reply)
