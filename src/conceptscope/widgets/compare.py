"""CompareView: attribution methods side by side on one image, graded against ground truth when it is known."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch
import traitlets

from ..evaluation import METRICS, localisation
from ..methods import Methods, get
from ..methods.figure import grid_figure
from ..models.composites import IMAGENET_MEAN, IMAGENET_STD
from ..render import encode_png, overlay, relevance_to_rgba
from ._arrays import as_image
from ._protocol import ProtocolError, RequestWidget, request
from .controller import picture_of

log = logging.getLogger("conceptscope.widgets")

#: the methods shown by default: one or two per family of the lecture, all quick on small images
DEFAULT_METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "guided_backprop",
                   "deconvnet", "gradcam", "gradcam_plus_plus", "occlusion", "rise", "lime", "lrp_epsilon_plus_flat",
                   "lrp_epsilon_gamma_box", "lrp_epsilon_alpha2_beta1")


class CompareView(RequestWidget):
    """A grid of ``methods``' heatmaps over ``image`` (a model input, C x H x W), each with its localisation scores
    when ``evidence`` is given: a bool (H, W) mask of the explained class's evidence, or ``{class: mask}`` to grade
    every class that has one. Clicking a tile enlarges it with its scores; choosing another class recomputes every
    method (the latest choice wins; tiles fill in as their methods finish).

    ``picture`` is the uint8 (H, W, 3) image shown (default: the input rescaled), ``classes`` names the classes,
    ``options`` = ``{method: {option: value}}`` overrides method defaults, ``mean``/``std`` the input normalisation.
    """

    _view = "compare"
    _view_sets = frozenset({"selected"})

    image_png = traitlets.Bytes(help="The picture as PNG bytes.").tag(sync=True)
    classes = traitlets.List(traitlets.Unicode(), help="Names of the classes.").tag(sync=True)
    target = traitlets.Int(-1, help="The explained class.").tag(sync=True)
    predicted = traitlets.Int(-1, help="The predicted class.").tag(sync=True)
    metrics = traitlets.List(traitlets.Unicode(), help="The localisation metrics of the tiles.").tag(sync=True)
    tiles = traitlets.List(traitlets.Dict(), help="[{method, family, library, png, scores, seconds, error}] in the "
                           "order of the methods; png b'' while computing.").tag(sync=True)
    selected = traitlets.Unicode("", help="The enlarged method ('' for none).").tag(sync=True)
    graded = traitlets.Bool(False, help="Whether ground truth is known for the target.").tag(sync=True)

    def __init__(self, model: Any, image: Any, methods: Any = None, *, target: int | None = None,
                 evidence: Any = None, picture: Any = None, classes: Any = None, options: dict | None = None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, opacity: float = 0.6, colormap: str = "bwr", **kwargs: Any):
        self.runner = model if isinstance(model, Methods) else Methods(model, mean=mean, std=std)
        names = list(DEFAULT_METHODS if methods is None else methods)
        for name in names:
            get(name)  # unknown names: an error listing the available ones
        if not names:
            raise ValueError("give at least one method to compare")
        self.image = torch.as_tensor(image).detach()
        if self.image.ndim != 3 or not self.image.is_floating_point():
            raise ValueError(f"image must be one float model input (C, H, W), got {self.image.dtype} of shape "
                             f"{tuple(self.image.shape)}")
        self.picture = picture_of(self.image) if picture is None else as_image(picture)
        self._shape = tuple(self.image.shape[-2:])
        if self.picture.shape[:2] != self._shape:
            raise ValueError(f"picture must be {self._shape} like the input, got {self.picture.shape[:2]}")
        self.evidence = self._check_evidence(evidence)
        self.options = options or {}
        self.opacity, self.colormap = opacity, colormap
        self.maps: dict[str, np.ndarray] = {}
        self.scores: dict[str, dict] = {}
        with torch.no_grad():
            logits = self.runner.model(self.image[None].to(next(self.runner.model.parameters()).device))
        count = logits.shape[1]
        names_of_classes = [str(c) for c in classes] if classes is not None else [str(i) for i in range(count)]
        if len(names_of_classes) != count:
            raise ValueError(f"classes names {len(names_of_classes)} classes, the model has {count}")
        predicted = int(logits.argmax())
        super().__init__(image_png=encode_png(self.picture), classes=names_of_classes, predicted=predicted,
                         target=predicted if target is None else self._check_target(target, count),
                         metrics=list(METRICS), **kwargs)
        self._names = names
        self.refresh()

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict) -> str:
        if proposal["value"] and proposal["value"] not in self._names:
            raise traitlets.TraitError(f"selected must be '' or one of the methods shown ({', '.join(self._names)}); "
                                       f"got {proposal['value']!r}")
        return proposal["value"]

    # -- inputs ---------------------------------------------------------------------------------------------------
    def _check_evidence(self, evidence):
        if evidence is None:
            return {}
        items = evidence.items() if isinstance(evidence, dict) else [(None, evidence)]
        checked = {}
        for cls, mask in items:
            mask = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
            if mask.shape != self._shape or mask.dtype != bool:
                raise ValueError(f"ground-truth mask{'' if cls is None else f' of class {cls}'} must be a bool array "
                                 f"of the input's size {self._shape}, got {mask.dtype} of shape {mask.shape}")
            checked[cls] = mask
        return checked

    @staticmethod
    def _check_target(target, count):
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < count:
            raise ProtocolError(f"target {target!r} is not a class (0..{count - 1})")
        return int(target)

    def mask_for(self, target: int) -> np.ndarray | None:
        """The evidence mask that grades ``target`` (None when there is none)."""
        return self.evidence.get(target, self.evidence.get(None))

    # -- computing ------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute every method for the current target; tiles fill in as the methods finish."""
        with self._lock, self.hold_sync():
            self.maps, self.scores = {}, {}
            self.graded = self.mask_for(self.target) is not None
            self.tiles = [self._tile(name) for name in self._names]
            for name in self._names:
                self.push(("map", name), lambda name=name, target=self.target: self._compute(name, target))

    def _tile(self, name, **state):
        spec = get(name)
        return {"method": name, "family": spec.family, "library": spec.library, "png": b"", "scores": {},
                "seconds": None, "error": "", **state}

    def _compute(self, name: str, target: int) -> dict:
        start = time.perf_counter()
        try:
            settings = dict(self.options.get(name, {}))
            if "progress" in get(name).defaults:  # no progress bars from the worker thread
                settings.setdefault("progress", False)
            relevance = self.runner(name, self.image, target, **settings).cpu().numpy()
        except Exception as exc:  # one failing method is shown in its tile; the others go on
            log.warning("CompareView: %s failed: %s", name, exc)
            return self._replace(name, error=f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - start
        mask = self.mask_for(target)
        scores = {}
        if mask is not None:
            found = localisation(torch.from_numpy(relevance)[None], torch.from_numpy(mask)[None])
            scores = {metric: None if math.isnan(v) else float(v) for metric, v in
                      ((m, float(values[0])) for m, values in found.items())}
        png = encode_png(overlay(self.picture, relevance_to_rgba(relevance, self.colormap), self.opacity))
        # applied with the tiles, and only if no newer target came meanwhile
        return {**self._replace(name, png=png, scores=scores, seconds=seconds),
                "maps": {**self.maps, name: relevance}, "scores": {**self.scores, name: scores}}

    def _replace(self, name, **state):
        return {"tiles": [self._tile(name, **state) if tile["method"] == name else tile for tile in self.tiles]}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every pending method has finished (for scripts and tests); False on timeout."""
        return self._worker.wait_idle(timeout)

    def set_target(self, target: int) -> None:
        """Explain ``target`` with every method."""
        with self._lock:
            self.target = self._check_target(target, len(self.classes))
            self.refresh()

    def figure(self, metric: str = "mass_accuracy", columns: int = 5):
        """A static matplotlib figure of the grid (the input, then each finished method, titled with ``metric``)."""
        self.wait()
        maps = {name: self.maps[name] for name in self._names if name in self.maps}
        title = f"explaining {self.classes[self.target]!r}"
        return grid_figure(self.picture, maps, self.scores, metric, columns, self.opacity, self.colormap, title)

    # -- requests from the view ---------------------------------------------------------------------------------
    @request("target", target=int)
    def _on_target(self, target: int) -> dict:
        self.set_target(target)
        return {"type": "target_set", "target": self.target}
