"""TargetView: the prediction's top classes and a selector of the class to explain."""

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
    (a bar or the dropdown) explains the input for that class.

    Give ``explainer`` and ``image`` (a model input, C x H x W), or the ``controller`` of an explorer.
    """

    _view = "target"
    _view_sets = frozenset({"k"})

    classes = traitlets.List(traitlets.Unicode(), help="Names of all classes.").tag(sync=True)
    predictions = traitlets.List(traitlets.Dict(),
                                 help="[{index, name, probability}] of the top classes.").tag(sync=True)
    target = traitlets.Int(-1, help="The explained class.").tag(sync=True)
    predicted = traitlets.Int(-1, help="The predicted class.").tag(sync=True)
    k = Count(5, help="How many top classes are shown.").tag(sync=True)

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
        return {"classes": found["classes"], "predictions": found["top"], "target": found["target"],
                "predicted": found["predicted"]}

    @request("target", target=int)
    def _on_target(self, target: int) -> dict[str, Any]:
        if not 0 <= target < len(self.classes):
            raise ProtocolError(f"target {target} is not a class (0..{len(self.classes) - 1})")
        self.controller.set_target(None if target == self.predicted else target)
        return {"type": "target_set", "target": target}
