"""The Explainer: LRP heatmaps and Concept Relevance Propagation for a PyTorch model, on the model's device."""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from zennit.core import Composite

from ..errors import UnknownLayerError
from ..models import blocks, check_layer, input_channels, layers, make_composite
from ..models.composites import IMAGENET_MEAN, IMAGENET_STD
from ..models.identity import model_digest
from ..models.private import model_fingerprint
from .arguments import count, layer_names
from .checks import check_input
from .composition import CompositionNode
from .concepts import ChannelConcept
from .explanation import Explanation, pixel_relevance, relevance_from_logits
from .inputs import as_batch
from .relevance_model import RelevanceModel
from .targets import Target, Targets, resolve_targets, target_key

Images = torch.Tensor | np.ndarray  # one image (C, H, W) or a batch (B, C, H, W), normalised floats
Layers = str | Sequence[str]
OutputSelector = int | str | Callable[[Any], Any]  # picks the logits from a tuple/dict output


def default_memory_budget(device):
    """Bytes the batched backward passes may use: half the free GPU memory, or a quarter of the free RAM (<= 2 GiB)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        available = 8 << 30
    return min(2 << 30, available // 4)


def _follows_model(method):
    """Run ``method`` under the explainer's lock on the explained copy of the model as it is now: the model's
    fingerprint is taken once per public call (nested calls reuse it) and the copy rebuilt if the model changed."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            if self._in_call:
                return method(self, *args, **kwargs)
            self._in_call = True
            try:
                self._sync()
                return method(self, *args, **kwargs)
            finally:
                self._in_call = False
    return wrapper


@dataclass(frozen=True)
class Attribution:
    """LRP of a batch: ``heatmaps`` (B, H, W; None when not asked for), ``logits`` (B, classes), ``targets`` (list of
    B class indices or contrasts), ``activations`` and ``relevances`` (``{layer: (B, channels, ...)}``, concepts at
    dim 1)."""
    heatmaps: torch.Tensor
    logits: torch.Tensor
    targets: list
    activations: dict
    relevances: dict


class Explainer:
    """Explains a model's decisions with LRP (zennit composites) and CRP, without ever changing the model.

    ``composite`` is a zennit ``Composite`` (used as-is) or a name from :data:`conceptscope.models.COMPOSITES`
    (default ``"epsilon_plus_flat"``, with canonizers chosen for BatchNorm networks and torchvision ResNets).
    ``mean``/``std`` describe the input normalisation (used by ``"epsilon_gamma_box"``); ``classes`` (optional) names
    the classes, so targets can be given by name. All work runs on a private canonized copy of the model, on the
    model's device; every call first checks that the copy still matches the model
    (:func:`~conceptscope.models.private.model_fingerprint`: weights, buffers, dtype, device and modules) and
    rebuilds it otherwise. Explanations of recent (image, target) pairs are cached, so repeated CRP queries reuse one
    forward pass.
    """

    def __init__(self, model: torch.nn.Module, composite: Composite | str | None = None, *,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 concept: ChannelConcept | None = None, cache_size: int = 4, memory_budget: int | None = None,
                 output: OutputSelector | None = None, classes: Sequence[str] | None = None,
                 layers: Layers | None = None, concept_axis: Mapping[str, int] | None = None) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
        _check_weights(model)
        if output is not None and not (isinstance(output, (int, str)) and not isinstance(output, bool)
                                       or callable(output)):
            raise TypeError(f"output must be None, an index, a key or a function of the model's output; got "
                            f"{type(output).__name__}")
        if concept is not None and not all(callable(getattr(concept, name, None))
                                           for name in ("count", "masks", "attribute", "check_ids")):
            raise TypeError(f"concept must be a concept notion such as ChannelConcept() (with count, masks, attribute "
                            f"and check_ids); got {type(concept).__name__}")
        self.model = model
        self._layers = None if layers is None else layer_names(layers)
        self._concept_axes = _check_concept_axes(model, concept_axis)
        self.composite = make_composite(model, composite, mean, std)
        self.concept = concept or ChannelConcept()
        self.output = output
        self.classes = None if classes is None else [str(name) for name in classes]
        self.lock = threading.RLock()
        self._input_spec = input_channels(model)
        self._cache_size = count("cache_size", cache_size, minimum=0)
        self._cache = OrderedDict()
        self._memory_budget = count("memory_budget", memory_budget, optional=True)
        self._relevance_model = None
        self._in_call = False
        self.generation = 0  # how many times the explained copy was (re)built: moves when the model changed
        for name in self._layers or ():
            self.check_layer(name)

    @property
    @_follows_model
    def layers(self) -> dict[str, int]:
        """``{name: concepts}`` of the concept layers, in call order: those given as ``layers=``, by default every
        convolution and linear layer called in the model's forward pass and the outputs of a transformer's blocks
        (:func:`~conceptscope.models.layers.blocks`). A layer's concepts are its channels (B, C, ...) or, for
        channel-last outputs (tokens (B, N, D), maps (B, H, W, C)), its features (see :mod:`.axes`)."""
        with self.lock:
            relevance_model = self._current()
            if self._layers is None:  # less those a forward pass showed to have no concept axis (see _run)
                return relevance_model.concept_layers([name for name in [*layers(self.model), *blocks(self.model)]
                                                       if name not in relevance_model.refused])
            found = relevance_model.concept_layers(self._layers)
            missing = [name for name in self._layers if name not in found]
            if missing:
                raise UnknownLayerError(f"layers {missing} are never called in the model's forward pass, so they "
                                        "have no output to take concepts from; name modules that forward() calls")
            return found

    @property
    def concept_axis(self) -> dict[str, int]:
        """The concept axes the user chose (``concept_axis=``): ``{layer: axis}``, empty where the rule of
        :mod:`.axes` decides."""
        return dict(self._concept_axes)

    @property
    def device(self) -> torch.device:
        return _first_weight(self.model).device

    @property
    def dtype(self) -> torch.dtype:
        return _first_weight(self.model).dtype

    @_follows_model
    def sync(self) -> int:
        """Follow the model now: rebuild the explained copy if the model changed since the last call (every public
        call does this itself). Returns :attr:`generation`, which grows with each rebuild, so callers that keep
        results (the widgets' controller) know when to drop them."""
        return self.generation

    @_follows_model
    def weights_digest(self) -> str:
        """SHA-256 of the weights the explanations are computed with (:func:`~conceptscope.models.identity.
        model_digest`), computed once per rebuild of the explained copy: what an atlas is stamped with."""
        relevance_model = self._relevance_model
        if relevance_model.digest is None:
            relevance_model.digest = model_digest(self.model)  # the model matches the copy: checked just now
        return relevance_model.digest

    def check_layer(self, name: str) -> None:
        """Refuse ``name`` (:class:`~conceptscope.errors.UnknownLayerError`, listing the layers) unless it is a module
        of the model or one a canonizer adds to the explained copy: the heads of a written-out
        ``nn.MultiheadAttention`` (``encoder.layers.encoder_layer_9.self_attention.heads``)."""
        with self.lock:
            self._check_layer(name)

    def _check_layer(self, name, relevance_model=None):
        """:meth:`check_layer` against ``relevance_model`` (default: the copy as the model is now, rebuilt if it
        changed; only looked at for a name the model lacks)."""
        try:
            check_layer(self.model, name)
        except UnknownLayerError:
            if relevance_model is None:
                self._sync()
                relevance_model = self._relevance_model
            if not (isinstance(name, str) and name and name in relevance_model.modules):
                raise

    def _sync(self):
        """Rebuild the relevance model if the user's model changed since it was built (see :func:`_follows_model`)."""
        fingerprint = model_fingerprint(self.model)
        if self._relevance_model is None or self._relevance_model.fingerprint != fingerprint:
            _check_weights(self.model)
            self._relevance_model = RelevanceModel(self.model, self.composite, self.output, fingerprint,
                                                   self._concept_axes)
            self._input_spec = input_channels(self.model)
            self._cache.clear()
            self.generation += 1

    def _current(self):
        """The relevance model (checked against the model at the start of the public call)."""
        return self._relevance_model

    def _run(self, images, layers, optional=()):
        """Forward pass on the relevance model: the batch, logits and trace; ``layers`` are checked first, and their
        outputs after the pass (:meth:`RelevanceModel.check_output`): one that has no concept axis raises, unless it is
        ``optional`` (listed by default, not named by the user): then it is remembered in ``refused`` and left out."""
        relevance_model = self._current()
        for name in layers:
            self._check_layer(name, relevance_model)
            if name in relevance_model.structured_outputs and name not in relevance_model.layer_nodes:
                raise ValueError(f"layer {name!r} returns {relevance_model.structured_outputs[name]}, not one tensor, "
                                 "so it has no concept axis: name a module whose output is one tensor (B, C, ...) or "
                                 "tokens (B, N, D)")
            if name not in relevance_model.layer_nodes:
                raise UnknownLayerError(f"layer {name!r} is never called in the model's forward pass, so it has no "
                                        "output")
        images = as_batch(images, self._input_spec, self.device, self.dtype)
        check_input(images)
        try:
            logits, trace = relevance_model.run(images)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as error:  # torch's own complaint about the input, e.g. an image too small to pool
            raise ValueError(f"{type(self.model).__name__} cannot run on an input of shape {tuple(images.shape)}: "
                             f"{error}. Check the input size the model expects") from error
        for name in layers:
            try:
                relevance_model.check_output(name, trace.values[relevance_model.node(name)], images.shape[0])
            except ValueError as error:
                if name not in optional:
                    raise
                relevance_model.refused[name] = str(error)  # e.g. a Linear inside Swin's windows: (B * windows, ...)
        return relevance_model, images, logits, trace

    @_follows_model
    def heatmap(self, images: Images, target: Targets = None) -> torch.Tensor:
        """LRP relevance per pixel for a batch ``(B, C, H, W)`` → ``(B, H, W)``; one image ``(C, H, W)`` → ``(H, W)``.

        ``target`` is a class index or name, a :class:`Contrast` ("a rather than b"), one of these per image, or None
        to explain each image's predicted class. The relevance starts at the target logit (for a contrast: at both
        logits, see :class:`Contrast`), so the heatmap sums to it up to what the rules absorb (biases, stabilisers).
        """
        single = getattr(images, "ndim", None) == self._input_spec[0]
        heatmaps = self.attribute(images, target).heatmaps
        return heatmaps[0] if single else heatmaps

    @_follows_model
    def forward(self, images: Images, layers: Layers = ()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The logits ``(B, classes)`` and ``{layer: activation (B, channels, ...)}`` of a batch: a forward pass only,
        on the explained (canonized) model, so activations are those the explanations and the atlas see."""
        names = layer_names(layers)
        with self.lock:
            relevance_model, _, logits, trace = self._run(images, names)
        return logits, {name: relevance_model.concept_view(name, trace.values[relevance_model.node(name)])
                        for name in names}

    def activation_maps(self, layer: str, activations: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """``layer``'s ``activations`` (B, concepts, ...) as :meth:`forward` returns them, laid on the grid of an input
        of ``image_size`` (H, W): maps as they are, tokens on their patch grid (B, concepts, h, w) without the class
        token, an attention's heads reduced per token to their largest dimension first (:func:`.axes.activation_maps`).
        What reference crops and the world's ground truth place on the image."""
        with self.lock:
            return self._current().activation_maps(layer, activations, image_size)

    @_follows_model
    def attribute(self, images: Images, target: Targets = None, layers: Layers = (),
                  heatmaps: bool = True) -> Attribution:
        """LRP for a batch of images: heatmaps, logits, targets and per-layer activations and relevances.

        Returns an :class:`Attribution` whose ``activations``/``relevances`` map each layer in ``layers`` to a tensor
        ``(B, channels, ...)``; the relevance of image i starts at its target logit (``target`` as in :meth:`heatmap`).
        This is what dataset-wide statistics (the atlas) consume: one forward and one backward pass per batch; with
        ``heatmaps=False`` the backward pass stops at the lowest of ``layers`` (and ``heatmaps`` is None), which
        saves most of its cost when the layers are deep.
        """
        names = layer_names(layers)
        if not isinstance(heatmaps, bool):
            raise TypeError(f"heatmaps must be True or False; got {type(heatmaps).__name__}")
        with self.lock:
            relevance_model, images, logits, trace = self._run(images, names)
            targets = resolve_targets(target, logits, self.classes)
            nodes = {name: relevance_model.node(name) for name in names}
            found = relevance_from_logits(relevance_model, trace, logits, targets, nodes.values(), heatmaps)
        return Attribution(
            heatmaps=pixel_relevance(found[relevance_model.input_node]) if heatmaps else None,
            logits=logits,
            targets=targets,
            activations={name: relevance_model.concept_view(name, trace.values[node])
                         for name, node in nodes.items()},
            relevances={name: relevance_model.concept_view(name, found.get(node)) for name, node in nodes.items()},
        )

    @_follows_model
    def explain(self, image: Images, target: Target = None, layers: Layers | None = None) -> Explanation:
        """Explain one image: an :class:`Explanation` with heatmap, logits, target and per-layer relevances.

        ``layers`` are the layers to record (default: :attr:`layers`). The explanation keeps its graph, so conditional
        heatmaps, rankings and compositions of it cost only backward passes.
        """
        names = list(self.layers) if layers is None else layer_names(layers)
        return self._explain(image, target, names, names if layers is None else ())

    def _explain(self, image, target, names, optional):
        """:meth:`explain` recording ``names``, those in ``optional`` only where they have a concept axis."""
        with self.lock:
            batch = as_batch(image, self._input_spec, self.device, self.dtype)
            if batch.shape[0] != 1:
                raise ValueError(f"explain takes one image, got a batch of {batch.shape[0]}; use heatmap() for batches")
            key = (hashlib.blake2b(batch.cpu().numpy().tobytes(), digest_size=16).hexdigest(),
                   tuple(batch.shape), target_key(target))
            cached = self._cache.get(key)
            if cached is not None and set(names) <= set(cached.layers):
                self._cache.move_to_end(key)
                return cached
            names = list(dict.fromkeys([*names, *(cached.layers if cached else ())]))
            relevance_model, images, logits, trace = self._run(batch, names, optional)
            names = [name for name in names if not (name in optional and name in relevance_model.refused)]
            (target_index,) = resolve_targets(target, logits, self.classes)
            budget = self._memory_budget or default_memory_budget(images.device)
            explanation = Explanation(relevance_model, trace, logits, target_index, names, self.concept, budget,
                                      lock=self.lock)
            self._cache[key] = explanation
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return explanation

    @_follows_model
    def conditional_heatmaps(self, image: Images, layer: str, channels: Iterable[int], target: Target = None,
                             chunk_size: int | None = None) -> torch.Tensor:
        """One heatmap per channel of ``layer`` (K, H, W), all from one forward pass, batched below the layer."""
        with self.lock:
            return self._explain(image, target, *self._with(layer)).conditional_heatmaps(layer, channels, chunk_size)

    @_follows_model
    def conditional_heatmap(self, image: Images, conditions: Mapping[str, Iterable[int]],
                            target: Target = None) -> torch.Tensor:
        """The heatmap restricted to ``conditions`` = ``{layer: [channels], ...}`` in every listed layer at once."""
        if not isinstance(conditions, Mapping):
            raise TypeError(f"conditions must be a dict {{layer: [channels]}}; got {type(conditions).__name__}")
        with self.lock:
            return self._explain(image, target, *self._with(*layer_names(list(conditions), "conditions' keys"))
                                 ).conditional_heatmap(conditions)

    @_follows_model
    def composition(self, image: Images, layer: str, channel: int, target: Target = None, depth: int = 2,
                    top: int = 5) -> CompositionNode:
        """The composition tree of concept ``(layer, channel)``: its ``top`` sub-concepts in the layers below, computed
        ``depth`` levels deep now and lazily further down. Returns the root :class:`CompositionNode`."""
        if not isinstance(layer, str):
            raise TypeError(f"layer must be a layer name (a string); got {type(layer).__name__}")
        depth, top = count("depth", depth, minimum=0), count("top", top)
        with self.lock:
            explanation = self._explain(image, target, *self._with(layer))
            (channel,) = self.concept.check_ids(layer, explanation.activations[layer][None], [channel])
            relevance = float(explanation.concept_relevance(layer)[channel])
            root = CompositionNode(self, explanation, [(layer, channel)], relevance, 1.0, top)
            return root.expand(depth)

    def _with(self, *extra):
        """The default recorded layers plus ``extra`` ones, and which of them are optional (the defaults)."""
        defaults = list(self.layers)
        return list(dict.fromkeys([*defaults, *extra])), [name for name in defaults if name not in extra]


def _check_concept_axes(model, axes):
    """``concept_axis`` as ``{layer: axis}`` (layers of ``model``, axes non-zero integers: 0 is the batch)."""
    if axes is None:
        return {}
    if not isinstance(axes, Mapping):
        raise TypeError(f"concept_axis must be a dict {{layer: axis}}, e.g. {{'stages.1': -1}} for a channel-last "
                        f"map; got {type(axes).__name__}")
    for name, axis in axes.items():
        check_layer(model, name)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ValueError(f"concept_axis of layer {name!r} must be a non-zero integer axis of its output (1 for "
                             f"channels first, -1 for features last; 0 is the batch); got {axis!r}")
    return dict(axes)


def _first_weight(model):
    """The first parameter (or buffer): its device and dtype are the model's."""
    return next(itertools.chain(model.parameters(), model.buffers()))


def _check_weights(model):
    """Refuse a model without parameters (nothing to tell its device and dtype, nor concepts to explain) or with
    weights on the meta device (no values)."""
    tensors = [*model.parameters(), *model.buffers()]
    if not tensors:
        raise ValueError(f"{type(model).__name__} has no parameters or buffers: conceptscope explains models with "
                         "weights (convolutions, linear layers); pass the trained network")
    meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if meta:
        raise ValueError(f"{type(model).__name__} has weights on the meta device (e.g. {meta[0]!r}), which hold no "
                         "values: load the weights first (model.to_empty(device=...) then load_state_dict)")
