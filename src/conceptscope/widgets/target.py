"""TargetView: the prediction's top classes and a selector of the class to explain; for a dense output (a segmenter,
a detector) also the predicted segments or detections, one of which is explained."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import traitlets

from ._protocol import Count, ProtocolError, RequestWidget, request
from .controller import Controller, ModelInput, Picture

if TYPE_CHECKING:
    from ..engine import Explainer


class TargetView(RequestWidget):
    """The ``k`` most probable classes (bars) and the explained ``target``; choosing another class
    (a bar or the dropdown) explains the input for that class, and choosing a class in "rather than"
    (``versus``) explains the target rather than that class (the difference of the two logits).

    For a dense output the bars are the classes' shares of the predicted pixels and a class explains its whole
    predicted region; ``segments`` lists the input's predicted segments (or detections) and choosing one (the list, or
    :meth:`select_segment`) explains it alone; ``segment`` is the explained one (-1: none).

    Give ``explainer`` and ``image`` (a model input, C x H x W), or the ``controller`` of an explorer.
    """

    _view = "target"
    _view_sets = frozenset({"k"})

    classes = traitlets.List(traitlets.Unicode(), help="Names of all classes.").tag(sync=True)
    predictions = traitlets.List(traitlets.Dict(),
                                 help="[{index, name, probability}] of the top classes.").tag(sync=True)
    target = traitlets.Int(-1, help="The explained class.").tag(sync=True)
    versus = traitlets.Int(-1, help="The class the target is contrasted with (-1: none).").tag(sync=True)
    predicted = traitlets.Int(-1, help="The predicted class.").tag(sync=True)
    k = Count(5, help="How many top classes are shown.").tag(sync=True)
    segments = traitlets.List(traitlets.Dict(), help="[{index, name, cls, box, score}] of the input's predicted "
                              "segments or detections (dense outputs only).").tag(sync=True)
    segment = traitlets.Int(-1, help="The explained segment (-1: none).").tag(sync=True)

    def __init__(self, explainer: Explainer | None = None, image: ModelInput | None = None, *,
                 target: int | None = None, k: int = 5, picture: Picture | None = None,
                 classes: Sequence[str] | None = None, controller: Controller | None = None, **kwargs: Any):
        self.controller = controller or Controller(explainer, image, target, picture, classes)
        super().__init__(k=k, **kwargs)
        self.controller.subscribe(self.refresh)
        self.observe(lambda _change: self.refresh(), names=["k"])
        self.refresh()

    @traitlets.validate("target", "predicted")
    def _valid_class(self, proposal: dict) -> int:
        value, name = proposal["value"], proposal["trait"].name
        if isinstance(value, bool) or not -1 <= value < len(self.classes):
            raise traitlets.TraitError(f"{name} {value!r} is not a class (0..{len(self.classes) - 1}; -1: none yet)")
        return value

    def refresh(self) -> None:
        """Show the prediction of the current input and target."""
        self.push("predictions", self._state)

    def _state(self) -> dict[str, Any]:
        found = self.controller.predictions(self.k)
        subject = self.controller.subject
        return {"classes": found["classes"], "predictions": found["top"], "target": found["target"],
                "versus": found["versus"], "predicted": found["predicted"],
                "segments": [segment.to_dict(k) for k, segment in enumerate(subject.segments)],
                "segment": self.controller.segment}

    def _check_class(self, index: int, what: str) -> None:
        if not 0 <= index < len(self.classes):
            raise ProtocolError(f"{what} {index} is not a class (0..{len(self.classes) - 1})")

    @request("target", target=int)
    def _on_target(self, target: int) -> dict[str, Any]:
        self._check_class(target, "target")
        self.controller.set_target(target if self.controller.dense or target != self.predicted else None)
        return {"type": "target_set", "target": target}

    def select_segment(self, index: int) -> None:
        """Explain segment ``index`` of :attr:`segments` (what a click on it, or on it in the heatmap, does)."""
        self.controller.set_segment(index)

    @request("segment", index=int)
    def _on_segment(self, index: int) -> dict[str, Any]:
        try:
            self.select_segment(index)
        except IndexError as exc:
            raise ProtocolError(str(exc)) from None
        return {"type": "segment_set", "index": index}

    @request("contrast", target=int, versus=int)
    def _on_contrast(self, target: int, versus: int) -> dict[str, Any]:
        """Explain ``target`` rather than ``versus`` (-1: the target alone)."""
        self._check_class(target, "target")
        if versus == -1:
            return self._on_target(target)
        self._check_class(versus, "versus")
        if self.controller.dense:
            raise ProtocolError("a contrast of two classes explains class logits, not a region of a dense output")
        if versus == target:
            raise ProtocolError(f"a contrast needs two different classes, got {target} rather than {versus}")
        self.controller.set_target(target, versus)
        return {"type": "target_set", "target": target, "versus": versus}
