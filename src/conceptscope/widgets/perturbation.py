"""PerturbationView: remove what an explanation calls most relevant, and watch the prediction change."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import traitlets

from ..engine import Explainer
from ..evaluation import remove_top
from ..evaluation._common import channel_mask_hook
from ..methods import Methods, get
from ..models import check_layer
from ..models.composites import IMAGENET_MEAN, IMAGENET_STD
from ..models.private import private_copy
from ..render import encode_png, overlay, relevance_to_rgba
from ._arrays import as_image
from ._protocol import ProtocolError, RequestWidget, request
from .controller import picture_of

UNITS = ("pixels", "concepts")
#: baselines that commute with a per-channel affine input normalisation, so the picture shows what the model sees
BASELINES = ("mean", "blur", "linear")


class PerturbationView(RequestWidget):
    """A slider removes the top ``fraction`` of the image's pixels by ``method``'s heatmap (or, with
    ``unit="concepts"``, of ``layer``'s concepts by their CRP relevance) and the picture and the class probabilities
    follow, the latest position winning: one point of a pixel-flipping or concept-deletion curve at a time.

    ``model`` is a torch model or a :class:`conceptscope.methods.Methods` (``mean``/``std``: the input
    normalisation); ``image`` one model input (C, H, W); ``picture`` the uint8 (H, W, 3) image shown (default: the
    input rescaled). Removed pixels (``patch_size`` squares) become the ``baseline``: ``"mean"``, ``"blur"`` or
    ``"linear"`` (ROAD's imputation), which commute with a per-channel normalisation, so the picture shows exactly what
    the model sees. Removed concepts are set to zero on a private copy; the picture then shows where they were (their
    conditional heatmap). ``target`` (default: the prediction) is the class whose explanation ranks.
    """

    _view = "perturbation"

    image_png = traitlets.Bytes(help="The picture as the model now sees it (PNG).").tag(sync=True)
    classes = traitlets.List(traitlets.Unicode(), help="Names of the classes.").tag(sync=True)
    target = traitlets.Int(-1, help="The class whose explanation ranks what is removed.").tag(sync=True)
    methods = traitlets.List(traitlets.Unicode(), help="The methods to choose from.").tag(sync=True)
    method = traitlets.Unicode(help="The method ranking the pixels.").tag(sync=True)
    unit = traitlets.Unicode("pixels", help="What is removed: 'pixels' or 'concepts'.").tag(sync=True)
    layer = traitlets.Unicode("", help="The layer whose concepts are removed.").tag(sync=True)
    fraction = traitlets.Float(0.0, help="The fraction removed, 0 to 1.").tag(sync=True)
    removed = traitlets.Int(0, help="How many pixels (or concepts) are removed.").tag(sync=True)
    total = traitlets.Int(0, help="How many pixels (or concepts) there are.").tag(sync=True)
    probabilities = traitlets.List(traitlets.Dict(), help="[{index, name, original, probability}] of the classes "
                                   "shown: the original top k and the target.").tag(sync=True)

    def __init__(self, model: Any, image: Any, *, method: str = "lrp_epsilon_plus_flat", methods: Any = None,
                 unit: str = "pixels", layer: str | None = None, target: int | None = None, picture: Any = None,
                 classes: Any = None, baseline: str = "mean", patch_size: int = 1, k: int = 5,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs: Any):
        self.runner = model if isinstance(model, Methods) else Methods(model, mean=mean, std=std)
        self.image = torch.as_tensor(image).detach()
        if self.image.ndim != 3 or not self.image.is_floating_point():
            raise ValueError(f"image must be one float model input (C, H, W), got {self.image.dtype} of shape "
                             f"{tuple(self.image.shape)}")
        self.picture = picture_of(self.image) if picture is None else as_image(picture)
        if self.picture.shape[:2] != tuple(self.image.shape[1:]):
            raise ValueError(f"picture must be {tuple(self.image.shape[1:])} like the input, got "
                             f"{self.picture.shape[:2]}")
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(map(repr, BASELINES))} (they commute with the input "
                             f"normalisation, so the picture shows what the model sees), got {baseline!r}")
        names = [method] if methods is None else list(methods)
        for name in names:
            get(name)  # unknown names: an error listing the available ones
        if method not in names:
            raise ValueError(f"method {method!r} is not among methods {names}")
        self.baseline, self.patch_size = baseline, patch_size
        self.explainer = Explainer(self.runner.model, mean=self.runner.mean, std=self.runner.std)
        layer = layer or self._last_spatial_layer()
        check_layer(self.runner.model, layer)
        self._original = torch.softmax(self.runner.logits(self.image[None])[0].double(), 0)
        count = len(self._original)
        class_names = [str(c) for c in classes] if classes is not None else [f"class {i}" for i in range(count)]
        if len(class_names) != count:
            raise ValueError(f"classes names {len(class_names)} classes, the model has {count}")
        if target is None:
            target = int(self._original.argmax())
        elif isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < count:
            raise ValueError(f"target must be a class index 0..{count - 1}, got {target!r}")
        self._shown = list(dict.fromkeys([*self._original.topk(min(k, count)).indices.tolist(), int(target)]))
        self._heatmaps: dict[str, torch.Tensor] = {}
        self._concepts = None  # (concept relevance, masked private copy) for the layer, made on first use
        super().__init__(classes=class_names, target=int(target), methods=names, method=method, layer=layer,
                         **kwargs)
        self._check_unit(unit)
        self.unit = unit
        self._requested = 0.0  # the latest fraction asked for (``fraction`` shows the latest one computed)
        self.push("perturb", lambda: self._state(0.0))

    def _last_spatial_layer(self) -> str:
        _, activations = self.explainer.forward(self.image, list(self.explainer.layers))
        spatial = [name for name, value in activations.items() if value.dim() == 4]
        return (spatial or list(activations))[-1]

    # -- computing ------------------------------------------------------------------------------------------------
    def _heatmap(self, method: str) -> torch.Tensor:
        if method not in self._heatmaps:
            self._heatmaps[method] = self.runner(method, self.image, self.target).detach().cpu()
        return self._heatmaps[method]

    def _state(self, fraction: float) -> dict[str, Any]:
        """The traits showing ``fraction`` removed in the current unit (runs on the worker thread)."""
        if self.unit == "pixels":
            logits, picture, removed, total = self._remove_pixels(fraction)
        else:
            logits, picture, removed, total = self._remove_concepts(fraction)
        probabilities = torch.softmax(logits.double(), 0)
        shown = [{"index": i, "name": self.classes[i], "original": float(self._original[i]),
                  "probability": float(probabilities[i])} for i in self._shown]
        return {"fraction": float(fraction), "removed": removed, "total": total, "probabilities": shown,
                "image_png": encode_png(picture)}

    def _remove_pixels(self, fraction):
        heatmap = self._heatmap(self.method)[None]
        settings = dict(patch_size=self.patch_size, baseline=self.baseline)
        perturbed, removed = remove_top(self.image[None], heatmap, fraction, **settings)
        picture = torch.from_numpy(self.picture).permute(2, 0, 1)[None].double() / 255
        shown, _ = remove_top(picture, heatmap, fraction, **settings)  # the same pixels, the same baseline
        pixels = (shown[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        return self.runner.logits(perturbed)[0], pixels, int(removed.sum()), removed[0].numel()

    def _remove_concepts(self, fraction):
        if self._concepts is None:
            relevance = self.explainer.explain(self.image, self.target, [self.layer]).concept_relevance(self.layer)
            model = private_copy(self.explainer.model, self.explainer.composite.canonizers)
            self._concepts = relevance.detach().cpu(), model
        relevance, model = self._concepts
        count = round(fraction * len(relevance))
        ids = torch.sort(relevance, descending=True, stable=True).indices[:count]
        keep = torch.ones(1, len(relevance), dtype=torch.bool)
        keep[0, ids] = False
        handle = dict(model.named_modules())[self.layer].register_forward_hook(channel_mask_hook(lambda: keep, 0.0))
        try:
            with torch.no_grad():
                logits = model(self.image[None].to(next(model.parameters()).device))[0]
        finally:
            handle.remove()
        picture = self.picture
        if count:
            where = self.explainer.conditional_heatmap(self.image, {self.layer: ids.tolist()}, self.target)
            picture = overlay(self.picture, relevance_to_rgba(where.detach().cpu().numpy()), 0.6)
        return logits, picture, count, len(relevance)

    # -- changes ----------------------------------------------------------------------------------------------------
    def _check_unit(self, unit):
        if unit not in UNITS:
            raise ProtocolError(f"unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}")

    def set_fraction(self, fraction: float) -> None:
        """Remove the top ``fraction`` (0 to 1) of pixels or concepts."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise ProtocolError(f"fraction must be a number from 0 to 1, got {fraction!r}")
        with self._lock:
            self._requested = float(fraction)
            self.push("perturb", lambda: self._state(float(fraction)))

    def set_method(self, method: str) -> None:
        """Rank the pixels by ``method`` (one of ``methods``), keeping the fraction."""
        if method not in self.methods:
            raise ProtocolError(f"method {method!r} is not offered here; choose one of {', '.join(self.methods)}")
        with self._lock:
            self.method = method
            self.set_fraction(self._requested)

    def set_unit(self, unit: str) -> None:
        """Remove ``"pixels"`` or ``"concepts"``, keeping the fraction."""
        self._check_unit(unit)
        with self._lock:
            self.unit = unit
            self.set_fraction(self._requested)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the pending work is done (for scripts and tests); False on timeout."""
        return self._worker.wait_idle(timeout)

    # -- requests from the view -----------------------------------------------------------------------------------
    @request("fraction", fraction=float)
    def _on_fraction(self, fraction: float) -> dict:
        self.set_fraction(fraction)
        return {"type": "fraction_set", "fraction": fraction}

    @request("method", method=str)
    def _on_method(self, method: str) -> dict:
        self.set_method(method)
        return {"type": "method_set", "method": method}

    @request("unit", unit=str)
    def _on_unit(self, unit: str) -> dict:
        self.set_unit(unit)
        return {"type": "unit_set", "unit": unit}
