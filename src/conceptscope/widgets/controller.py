"""The controller between the views and the engine: the explained input and its cached CRP results.

The views of an explorer share one controller. It holds the input (model image, displayed picture,
target) as one immutable :class:`Subject`, replaced as a whole when the input or target changes,
so work running on the worker thread reads a consistent input. The image is hashed once, when it
is set: the subject's explanation is kept (the explainer's own cache would hash the image on every
call), and heavy results (conditional heatmaps, composition trees) are cached per (image, target,
layer, concept), and dropped when the explained model changed (every query asks the explainer first).
The explainer, its explanations and composition trees take the explainer's lock themselves.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine import CompositionNode, ConceptScore, Contrast, Explainer, Explanation, Output, Region
from ..engine.arguments import count, is_integer, short
from ..engine.segments import Segment, predicted_segments
from ..engine.targets import BACKGROUND, largest_region, peak, resolve_targets, target_class, target_key
from ..render import picture_of
from ._arrays import as_image

Box = Sequence[int]  # (x0, y0, x1, y1) in image pixels, x1 and y1 exclusive
Path = Sequence[Sequence[Any]]  # [(layer, channel), ...] from a tree's root down
ModelInput = torch.Tensor | np.ndarray  # (C, H, W) float, normalised as the model expects
Picture = np.ndarray | torch.Tensor  # uint8 (H, W, 3)
Labels = dict[str, dict[int, str | None]]  # {layer: {channel: text}}
Segments = Callable[[torch.Tensor], Sequence[Segment]]  # model input (C, H, W) -> what a user can pick in it


def check_labels(labels: Any, layers: dict[str, int]) -> Labels:
    """``labels`` as ``{layer: {channel: text or None}}``, each layer and channel checked against ``layers``
    (``{name: concepts}``), or a clear error."""
    if not isinstance(labels, dict):
        raise TypeError(f"labels must be a dict {{layer: {{channel: text}}}}, got {type(labels).__name__}")
    checked = {}
    for layer, names in labels.items():
        if layer not in layers:
            raise ValueError(f"labels name layer {layer!r}, which the model does not have; layers: "
                             f"{', '.join(layers)}")
        if not isinstance(names, dict):
            raise TypeError(f"labels[{layer!r}] must be a dict {{channel: text}}, got {type(names).__name__}")
        for channel, text in names.items():
            if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) \
                    or not 0 <= channel < layers[layer]:
                raise ValueError(f"labels[{layer!r}] names channel {channel!r}, but the layer has channels "
                                 f"0..{layers[layer] - 1}")
            if text is not None and not isinstance(text, str):
                raise TypeError(f"the label of {layer} #{channel} must be a string, got {type(text).__name__}")
        checked[layer] = {int(channel): text for channel, text in names.items()}
    return checked


def check_box(box: Any, shape: tuple[int, int]) -> list[int]:
    """``box`` as a list: [] (no box) or [x0, y0, x1, y1], 4 integers with 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
    for an image of ``shape`` (H, W); else a ValueError/TypeError that says so."""
    height, width = shape
    if not isinstance(box, (list, tuple)) or (box and (len(box) != 4 or not all(is_integer(v) for v in box))):
        raise TypeError(f"region box must be [x0, y0, x1, y1] of 4 integers (or []); got {short(box)}")
    box = [int(v) for v in box]
    if box and not (0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height):
        raise ValueError(f"region box {box} is empty or outside the {width}x{height} image: it needs "
                         f"0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}")
    return box


@dataclass(frozen=True)
class Subject:
    """What is explained: the model ``image`` (C, H, W), the ``picture`` shown (uint8 H, W, 3), the
    ``target`` (a class, a :class:`Contrast` of two, or None: the predicted class; for a dense output a
    :class:`Region` or an :class:`Output`), a ``digest`` of the image for cache keys and, for a dense output, the
    ``segments`` a user can pick (predicted segments or detections)."""

    image: torch.Tensor
    picture: np.ndarray
    target: int | Contrast | Region | Output | None
    digest: str
    segments: tuple[Segment, ...] = ()

    @property
    def key(self) -> tuple[str, Any]:
        """The cache key: the image digest and the target (a region by its mask's content)."""
        return self.digest, target_key(self.target) if isinstance(self.target, Region) else self.target


class Controller:
    """An explainer, the input it explains and a cache of results for the views.

    ``image`` is the model input (C, H, W, normalised as the model expects); ``picture`` the uint8
    (H, W, 3) image shown (default: the input rescaled); ``classes`` names the model's classes (default: the
    explainer's names, if it has them).

    For a model with a dense output (a segmenter's (B, classes, H, W), a detector's score map) the explained target is
    a :class:`Region` or an :class:`Output`, and each input has ``segments`` a user can pick: by default the predicted
    segments (connected components of each predicted non-background class, :func:`predicted_segments`), or what the
    function ``segments`` (model input → :class:`Segment` list, e.g. a detector's boxes) gives. Without a ``target``
    the first segment is explained (the largest; a detector's strongest), or where there is none the largest predicted
    region (a segmenter) or the score map's peak.
    """

    def __init__(self, explainer: Explainer, image: ModelInput, target: int | Region | Output | None = None,
                 picture: Picture | None = None, classes: Sequence[str] | None = None, cache_size: int = 256,
                 labels: Labels | None = None, segments: Segments | None = None):
        if not isinstance(explainer, Explainer):
            raise TypeError(f"explainer must be a conceptscope Explainer; got {type(explainer).__name__}")
        self.explainer = explainer
        if classes is not None and (isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence)):
            raise TypeError(f"classes must be a list of class names; got {type(classes).__name__}")
        classes = explainer.classes if classes is None else classes  # the explainer's names where it has them
        self.classes = None if classes is None else [str(c) for c in classes]
        self.labels = None if labels is None else check_labels(labels, explainer.layers)
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = count("cache_size", cache_size, minimum=0)
        self._generation = explainer.sync()
        self._cache_lock = threading.Lock()
        self._explained: tuple[tuple[str, int | None], Explanation] | None = None  # the last subject's explanation
        self._listeners: list[Callable[[], None]] = []
        if segments is not None and not callable(segments):
            raise TypeError(f"segments must be a function of the model input giving a list of Segments (e.g. "
                            f"conceptscope.world.detection.detection_segments(model)); got {type(segments).__name__}")
        self._segments = segments
        logits, _ = explainer.forward(self._tensor(image))
        #: whether the model's output is dense (B, classes, ...): targets are regions or output elements, not classes
        self.dense = logits.dim() > 2
        self.subject = self._subject(image, picture, target)
        if self.classes is not None:
            if len(self.classes) != logits.shape[1]:
                raise ValueError(f"classes names {len(self.classes)} classes, but the model has {logits.shape[1]} "
                                 "outputs: give one name per class, in the order of the model's outputs")

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change of the input or target (in the changing thread)."""
        self._listeners.append(callback)

    def _changed(self, subject: Subject) -> None:
        self.subject = subject
        for callback in self._listeners:
            callback()

    # -- the input -------------------------------------------------------------------------------
    @staticmethod
    def _tensor(image: ModelInput) -> torch.Tensor:
        tensor = torch.as_tensor(image)
        if tensor.dim() != 3 or not tensor.is_floating_point():
            raise ValueError(f"image must be a float tensor (C, H, W) as the model takes it; got "
                             f"{tensor.dtype} of shape {tuple(tensor.shape)}")
        return tensor

    def _subject(self, image: ModelInput, picture: Picture | None, target: int | Region | Output | None,
                 same: Subject | None = None) -> Subject:
        """The subject of an input and target (``same``: the subject whose input this is, kept with its segments)."""
        tensor = self._tensor(image)
        picture = picture_of(tensor) if picture is None else as_image(picture)
        if picture.shape[:2] != tuple(tensor.shape[1:]):
            raise ValueError(f"the picture ({picture.shape[0]}x{picture.shape[1]}) must have the model input's size "
                             f"({tensor.shape[1]}x{tensor.shape[2]})")
        if self.dense and target is not None and not isinstance(target, (Region, Output)):
            self._check_class(target)
            target = Region(int(target))  # a class over its whole predicted region
        self._check_target(target)
        if same is None:
            digest = hashlib.blake2b(tensor.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()
            segments = tuple(self._segments_of(tensor)) if self.dense else ()
        else:  # the same input, another target
            tensor, picture, digest, segments = same.image, same.picture, same.digest, same.segments
        if self.dense and target is None:
            target = segments[0].target if segments else self._default_target(tensor)
        elif self.dense and not any(target is segment.target for segment in segments):
            resolve_targets([target], self.explainer.forward(tensor)[0], self.classes)  # a bad mask or index: say so
        return Subject(tensor, picture, target, digest, segments)

    def _segments_of(self, image: torch.Tensor) -> list[Segment]:
        if self._segments is not None:
            segments = list(self._segments(image))
            if not all(isinstance(segment, Segment) for segment in segments):
                raise TypeError("segments must return a list of conceptscope.engine.segments.Segment")
            return segments
        output = self.explainer.forward(image)[0][0]
        return predicted_segments(output, tuple(image.shape[1:]), self.classes) if output.dim() == 3 else []

    def _default_target(self, image: torch.Tensor) -> Region | Output:
        """Without segments: a segmenter's largest predicted region, else the peak of the score map."""
        output = self.explainer.forward(image)[0]
        return (largest_region if output.dim() == 4 and self._segments is None else peak)(output)[0]

    def _check_target(self, target: int | Contrast | Region | Output | None) -> None:
        if target is None:
            return
        if isinstance(target, (Region, Output)):
            if not self.dense:
                raise ValueError(f"target {target!r} explains part of a dense output (a segmentation map, a "
                                 "detector's score map); this model's output is class logits: give a class index")
            return
        if self.dense:
            raise ValueError(f"this model's output is dense (e.g. per pixel): give a target that says what to explain "
                             f"— cs.Region(cls, mask) or cs.Output(index) — or None for the first segment; got "
                             f"{target!r}")
        if isinstance(target, Contrast):
            if target.a == target.b:
                raise ValueError(f"a contrast needs two different classes, got {target.a!r} rather than {target.b!r}")
            for index in (target.a, target.b):
                self._check_target(index)
            return
        self._check_class(target)

    def set_input(self, image: ModelInput, picture: Picture | None = None, target: int | None = None) -> None:
        """Explain a new input (target: None for the predicted class)."""
        self._changed(self._subject(image, picture, target))

    def set_target(self, target: int | Region | Output | None, versus: int | None = None) -> None:
        """Explain the same input for another class (None: the predicted one), or with ``versus`` for ``target``
        rather than ``versus`` (a :class:`Contrast` of the logit difference). For a dense output a class is explained
        over its whole predicted region (``Region(target)``); a :class:`Region` or :class:`Output` is taken as it is."""
        if self.dense and versus is not None:
            raise ValueError("a contrast of two classes explains class logits; this model's output is dense: explain "
                             "one region or one detection at a time")
        if self.dense:
            self._changed(self._subject(self.subject.image, self.subject.picture, target, self.subject))
            return
        if versus is not None:
            if target is None:
                raise ValueError("a contrast needs the class explained: give target as well as versus")
            target = Contrast(int(target), int(versus))
        self._check_target(target)
        subject = self.subject
        target = None if target is None else target if isinstance(target, Contrast) else int(target)
        self._changed(Subject(subject.image, subject.picture, target, subject.digest, subject.segments))

    def _check_class(self, target: Any) -> None:
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise ValueError(f"target must be a class index, a Contrast of two or None; got {target!r} (on a dense "
                             "output also a Region or an Output)")
        if self.classes is not None and not 0 <= target < len(self.classes):
            raise ValueError(f"target {target} is not a class (0..{len(self.classes) - 1})")

    def set_segment(self, index: int) -> None:
        """Explain segment ``index`` of the input's :attr:`Subject.segments` (a predicted object, a detection)."""
        segments = self.subject.segments
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(segments):
            raise IndexError(f"segment {index!r} does not exist: this input has {len(segments)} segment(s)"
                             + (f"; choose 0..{len(segments) - 1}" if segments else
                                " (the model predicts no object in it)"))
        self.set_target(segments[index].target)

    @property
    def segment(self) -> int:
        """Index of the explained segment among the input's segments (-1: the target is no segment)."""
        return next((k for k, segment in enumerate(self.subject.segments) if segment.target is self.subject.target),
                    -1)

    # -- engine queries (called on the worker thread) ----------------------------------------------
    def _follow_model(self) -> None:
        """If the explained model changed since the kept results were computed: drop them, and tell the listeners (as
        for a new input), so that every view shows the model as it is now, not only the one that asked."""
        generation = self.explainer.sync()
        if generation != self._generation:
            self.clear_cache()
            self._generation = generation
            self._changed(self.subject)

    def explanation(self, subject: Subject | None = None) -> Explanation:
        """The explanation of ``subject`` (default: the current one), computed once per input and target."""
        self._follow_model()
        subject = subject or self.subject
        with self._cache_lock:
            if self._explained is not None and self._explained[0] == subject.key:
                return self._explained[1]
        explanation = self.explainer.explain(subject.image, subject.target)
        with self._cache_lock:
            self._explained = subject.key, explanation
        return explanation

    def label(self, layer: str, channel: int) -> str:
        """The concept's label: its text, "unlabelled" where labels exist but not for it, "" where there are none."""
        if self.labels is None:
            return ""
        return self.labels.get(layer, {}).get(int(channel)) or "unlabelled"

    def labelled_tree(self, tree: dict[str, Any]) -> dict[str, Any]:
        """A composition tree dict (``CompositionNode.to_dict``) with each node's ``label`` (unchanged without)."""
        if self.labels is None:
            return tree
        children = tree["children"]
        return {**tree, "label": self.label(tree["layer"], tree["channel"]),
                "children": None if children is None else [self.labelled_tree(child) for child in children]}

    def class_name(self, index: int) -> str:
        return self.classes[index] if self.classes is not None else f"class {index}"

    def predictions(self, k: int = 5) -> dict[str, Any]:
        """The explained ``target`` (and for a contrast the class ``versus``, else -1), the ``predicted`` class, the
        ``k`` most probable classes (``top``: [{index, name, probability}]) and the names of all ``classes``."""
        explanation = self.explanation()
        if self.dense:
            return self._dense_predictions(explanation, k)
        probabilities = torch.softmax(explanation.logits.detach().float().cpu(), 0)
        values, indices = probabilities.topk(min(k, probabilities.numel()))
        top = [{"index": int(i), "name": self.class_name(int(i)), "probability": float(p)}
               for p, i in zip(values, indices)]
        classes = [self.class_name(i) for i in range(probabilities.numel())]
        target = explanation.target
        contrast = isinstance(target, Contrast)
        return {"target": target.a if contrast else target, "versus": target.b if contrast else -1,
                "predicted": top[0]["index"], "top": top, "classes": classes}

    def _dense_predictions(self, explanation: Explanation, k: int) -> dict[str, Any]:
        """For a dense output: the classes by their share of the output's cells where they are predicted (the
        argmax), the explained target's class, and the non-background class predicted on the most cells."""
        logits = explanation.logits.detach().float().cpu()
        shares = torch.bincount(logits.argmax(0).flatten(), minlength=logits.shape[0]).double() / logits[0].numel()
        values, indices = shares.topk(min(k, len(shares)))
        top = [{"index": int(i), "name": self.class_name(int(i)), "probability": float(p)}
               for p, i in zip(values, indices)]
        objects = shares.clone()
        objects[BACKGROUND] = -1
        return {"target": target_class(explanation.target), "versus": -1, "predicted": int(objects.argmax()),
                "top": top, "classes": [self.class_name(i) for i in range(len(shares))]}

    def default_layer(self) -> str:
        """The last recorded layer with spatial or token output (a CNN's last convolution, a transformer's last block),
        else the last layer. For a dense output, the last such layer the explained relevance flows through, short of
        the one that makes the output (whose channels are the classes themselves, not concepts)."""
        explanation = self.explanation()
        spatial = [name for name in explanation.layers if explanation.activations[name].dim() >= 2]
        if self.dense:
            spatial = [name for name in spatial if name in explanation.relevances][:-1] or spatial
        return (spatial or explanation.layers)[-1]

    def region_mask(self, box: Box | None, subject: Subject | None = None) -> np.ndarray | None:
        """A bool (H, W) mask of the box, or None for no box."""
        if box is None:
            return None
        height, width = (subject or self.subject).picture.shape[:2]
        box = check_box(box, (height, width))
        if not box:
            return None
        x0, y0, x1, y1 = box
        mask = np.zeros((height, width), dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask

    def top_concepts(self, layer: str, k: int = 8, box: Box | None = None) -> list[ConceptScore]:
        subject = self.subject
        explanation = self.explanation(subject)
        return explanation.top_concepts(layer, k, self.region_mask(box, subject))

    def conditional(self, layer: str, channels: Sequence[int], subject: Subject | None = None) -> list[np.ndarray]:
        """Conditional heatmaps (H, W) of ``channels`` of ``layer``: cached, the missing ones in one batch."""
        self._follow_model()
        subject = subject or self.subject
        keys = [(subject.key, "channel", layer, int(c)) for c in channels]
        found = {key: self._cached(key) for key in keys}
        missing = [key for key in keys if found[key] is None]
        if missing:
            explanation = self.explanation(subject)
            maps = explanation.conditional_heatmaps(layer, [key[3] for key in missing])
            for key, relevance in zip(missing, maps.detach().float().cpu().numpy()):
                found[key] = self._store(key, relevance)
        return [found[key] for key in keys]

    def composition(self, layer: str, channel: int, top: int = 5, subject: Subject | None = None) -> CompositionNode:
        """The composition tree rooted at ``(layer, channel)``, its first level expanded; cached."""
        self._follow_model()
        subject = subject or self.subject
        key = (subject.key, "tree", layer, int(channel), top)
        root = self._cached(key)
        if root is None:
            root = self.explainer.composition(subject.image, layer, int(channel), subject.target, depth=1, top=top)
            root = self._store(key, root)
        return root

    def tree_node(self, path: Path, top: int = 5, subject: Subject | None = None) -> CompositionNode:
        """The composition-tree node at ``path`` ([(layer, channel), ...]), expanding the nodes on the way."""
        (layer, channel), *rest = path
        node = self.composition(layer, channel, top, subject)
        for step in rest:
            matches = [child for child in node.children if [child.layer, child.channel] == list(step)]
            if not matches:
                raise ValueError(f"{list(step)} is not a sub-concept of {node.path[-1]}")
            node = matches[0]
        return node

    def path_heatmap(self, path: Path, top: int = 5) -> np.ndarray:
        """The conditional heatmap (H, W) of a tree path (every concept on it at once); cached."""
        self._follow_model()
        subject = self.subject
        if len(path) == 1:
            (layer, channel), = path
            return self.conditional(layer, [channel], subject)[0]
        key = (subject.key, "path", tuple((layer, int(channel)) for layer, channel in path))
        relevance = self._cached(key)
        if relevance is None:
            node = self.tree_node(path, top, subject)
            relevance = self._store(key, node.heatmap().detach().float().cpu().numpy())
        return relevance

    def node(self, path: Path, top: int = 5, subject: Subject | None = None) -> CompositionNode:
        """Deprecated old name of :meth:`tree_node`."""
        warnings.warn("Controller.node is deprecated: use Controller.tree_node", DeprecationWarning, stacklevel=2)
        return self.tree_node(path, top, subject)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._explained = None

    # -- cache -------------------------------------------------------------------------------------
    def _cached(self, key: tuple) -> Any:
        with self._cache_lock:
            value = self._cache.get(key)
            if value is not None:
                self._cache.move_to_end(key)
            return value

    def _store(self, key: tuple, value: Any) -> Any:
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value
