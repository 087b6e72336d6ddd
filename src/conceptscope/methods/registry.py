"""One interface over every attribution method: ``Methods(model)(name, images, target, **options)`` -> ``(B, H, W)``.

Which library computes what: LRP by conceptscope's own engine (zennit rules); saliency, gradient x input, Integrated
Gradients, SmoothGrad, guided backprop, deconvnet, Grad-CAM, occlusion and LIME by Captum; Grad-CAM++ and RISE here
(Captum has neither). Every method runs on a private copy of the model, so the user's model is never hooked, switched
to another mode or changed.
"""
from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..engine import Explainer
from ..engine.targets import Contrast, resolve_targets
from ..models.composites import IMAGENET_MEAN, IMAGENET_STD
from ..models.private import model_fingerprint, private_copy
from . import cam, gradient, perturbation
from ._model import check_finite


@dataclass(frozen=True)
class Method:
    """An attribution method: its ``name``, ``family`` (for the lecture's grouping), the ``library`` that computes
    it, the function, how its ``(B, C, H, W)`` input attributions become a map (``reduce``: "sum" over channels for
    signed attributions, "max" of magnitudes for gradient visualisations, None when the function already returns
    ``(B, H, W)``), whether it draws random numbers (then it takes ``seed``) and whether it is slow."""

    name: str
    family: str
    library: str
    function: Callable
    reduce: str | None = "sum"
    random: bool = False
    slow: bool = False
    description: str = ""
    defaults: dict = field(default_factory=dict)


def _lrp(composite):
    def lrp(model, images, targets, *, explainer):
        return explainer(composite).heatmap(images, targets)
    lrp.__doc__ = f"LRP with the {composite} composite (conceptscope's engine, zennit rules)."
    return lrp


def _method(name, family, library, function, reduce="sum", slow=False):
    signature = inspect.signature(function)
    defaults = {key: p.default for key, p in signature.parameters.items()
                if p.default is not inspect.Parameter.empty and p.kind is not inspect.Parameter.KEYWORD_ONLY}
    description = (function.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Method(name, family, library, function, reduce, "seed" in defaults, slow, description, defaults)


#: every method by name, in the order of the lecture: gradients, backward visualisations, CAM, perturbation, LRP
METHODS = {m.name: m for m in (
    _method("saliency", "gradient", "Captum", gradient.saliency, "max"),
    _method("gradient_x_input", "gradient", "Captum", gradient.gradient_x_input),
    _method("integrated_gradients", "gradient", "Captum", gradient.integrated_gradients),
    _method("smoothgrad", "gradient", "Captum", gradient.smoothgrad, "max"),
    _method("guided_backprop", "backward visualisation", "Captum", gradient.guided_backprop, "max"),
    _method("deconvnet", "backward visualisation", "Captum", gradient.deconvnet, "max"),
    _method("gradcam", "CAM", "Captum", cam.gradcam, None),
    _method("gradcam_plus_plus", "CAM", "conceptscope", cam.gradcam_plus_plus, None),
    _method("occlusion", "perturbation", "Captum", perturbation.occlusion, None, slow=True),
    _method("rise", "perturbation", "conceptscope", perturbation.rise, None, slow=True),
    _method("lime", "perturbation", "Captum", perturbation.lime, None, slow=True),
    _method("lrp_epsilon_plus_flat", "LRP", "conceptscope (zennit rules)", _lrp("epsilon_plus_flat"), None),
    _method("lrp_epsilon_gamma_box", "LRP", "conceptscope (zennit rules)", _lrp("epsilon_gamma_box"), None),
    _method("lrp_epsilon_alpha2_beta1", "LRP", "conceptscope (zennit rules)", _lrp("epsilon_alpha2_beta1"), None),
)}


def available() -> list[str]:
    """The names of all methods."""
    return list(METHODS)


def get(name: str) -> Method:
    """The method called ``name``; an unknown name gets an error listing the available ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available methods: {', '.join(METHODS)}")
    return METHODS[name]


class Methods:
    """Computes any method of :data:`METHODS` for ``model`` on a private copy of it.

    ``mean``/``std`` describe the input normalisation (the box rule of ``lrp_epsilon_gamma_box`` needs them; the
    shapes world's are ``world.mean``/``world.std``). The copy is made on first use and redone whenever the model
    changed (:func:`~conceptscope.models.private.model_fingerprint`). Calls are serialised (one lock), so widgets may
    share an instance across threads.
    """

    def __init__(self, model: torch.nn.Module, *, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        if isinstance(model, Explainer):
            model = model.model
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"expected a torch.nn.Module or an Explainer, got {type(model).__name__}")
        self.model, self.mean, self.std = model, mean, std
        self.lock = threading.RLock()
        self._copy, self._version, self._explainers = None, None, {}

    def _private(self):
        version = model_fingerprint(self.model)
        if self._copy is None or version != self._version:
            self._copy, self._version, self._explainers = private_copy(self.model), version, {}
        return self._copy

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits for a batch ``(B, C, H, W)``, computed on the private copy without gradients."""
        with self.lock, torch.no_grad():
            model = self._private()
            return model(images.to(next(model.parameters()).device))

    def _explainer(self, composite):
        if composite not in self._explainers:
            self._explainers[composite] = Explainer(self._copy, composite, mean=self.mean, std=self.std)
        return self._explainers[composite]

    def __call__(self, method: str, images, target=None, **options) -> torch.Tensor:
        """Relevance maps of ``method`` for ``images`` ``(B, C, H, W)`` -> ``(B, H, W)`` (one image ``(C, H, W)`` ->
        ``(H, W)``); ``target`` is a class index, one per image, or None for the predicted classes (the LRP methods
        also take a ``Contrast``). ``options`` override the method's defaults (see ``METHODS[name].defaults``)."""
        spec = get(method)
        unknown = set(options) - set(spec.defaults)
        if unknown:
            raise TypeError(f"method {method!r} takes no option(s) {', '.join(sorted(unknown))}; its options: "
                            f"{', '.join(f'{k}={v!r}' for k, v in spec.defaults.items()) or 'none'}")
        with self.lock:
            model = self._private()
            batch, single = self._batch(images, model)
            with torch.no_grad():
                targets = resolve_targets(target, model(batch))
            if spec.family != "LRP" and any(isinstance(t, Contrast) for t in targets):
                raise ValueError(f"method {method!r} explains one class at a time; contrastive targets (\"a rather "
                                 "than b\") are explained by the LRP methods and by cs.Explainer")
            extra = {"explainer": self._explainer} if spec.family == "LRP" else {}
            with torch.enable_grad(), warnings.catch_warnings():
                # Captum warns that it sets requires_grad on the inputs and hooks ReLUs: both on our copies
                warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                found = spec.function(model, batch, targets, **options, **extra)
            maps = self._reduce(found.detach(), spec.reduce)
            check_finite(maps, method)
        return maps[0] if single else maps

    @staticmethod
    def _batch(images, model):
        if isinstance(images, torch.Tensor) is False:
            raise TypeError(f"expected images as a float torch.Tensor (B, C, H, W), got {type(images).__name__}")
        if not images.is_floating_point():
            raise TypeError(f"expected float images normalised as the model was trained, got dtype {images.dtype}")
        single = images.ndim == 3
        batch = images[None] if single else images
        if batch.ndim != 4:
            raise ValueError(f"attribution methods take images (B, C, H, W) or (C, H, W), got shape "
                             f"{tuple(images.shape)}")
        parameter = next(model.parameters(), None)
        if parameter is not None:
            batch = batch.to(device=parameter.device, dtype=parameter.dtype)
        return batch.detach(), single

    @staticmethod
    def _reduce(found, how):
        if how == "sum":
            return found.sum(1)
        if how == "max":
            return found.abs().amax(1)
        return found


def attribute(model, images, target=None, method: str = "lrp_epsilon_plus_flat", *, mean=IMAGENET_MEAN,
              std=IMAGENET_STD, **options) -> torch.Tensor:
    """One call: the ``(B, H, W)`` maps of ``method`` for ``images`` (see :class:`Methods`). For many calls on one
    model keep a :class:`Methods`, which copies the model once."""
    return Methods(model, mean=mean, std=std)(method, images, target, **options)
