"""One explained image: the recorded forward pass, and the CRP queries answered from it.

The forward pass runs once; every conditional heatmap, concept ranking and composition step is a backward pass from
a recorded layer down, batched over concepts (the concepts folded into the batch dimension).
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UnknownLayerError
from ..models.layers import AttentionHeads
from .arguments import count, layer_names
from .axes import patch_grid
from .checks import check_heatmaps
from .inputs import check_region
from .targets import initial_relevance


def pixel_relevance(grad):
    """Input relevance ``(B, C, H, W)`` summed over channels to a heatmap ``(B, H, W)``; vectors ``(B, F)`` as-is."""
    return (grad.sum(1) if grad.dim() > 2 else grad).detach()


def relevance_from_logits(relevance_model, trace, logits, targets, collect, to_input=True):
    """LRP from each sample's target (a class logit or a contrast, see :mod:`.targets`) down to the nodes in
    ``collect`` (and the input, checked by :func:`check_heatmaps` for non-finite, vanished or created relevance):
    ``{node: relevance}``."""
    initial = initial_relevance(logits, targets)
    found = relevance_model.propagate(trace, relevance_model.node_of_output, initial, collect, to_input=to_input)
    if to_input:
        check_heatmaps(found[relevance_model.input_node], initial.flatten(1).sum(1), logits.abs().flatten(1).mean(1))
    return found


Region = torch.Tensor | np.ndarray  # a boolean (H, W) mask of the input


@dataclass(frozen=True)
class ConceptScore:
    """A concept of a layer with its relevance and its share of the layer's (absolute) relevance."""
    layer: str
    channel: int
    relevance: float
    share: float


class Explanation:
    """Heatmap, prediction, target and per-layer activations and relevances of one image, plus CRP queries.

    Attributes: ``heatmap`` (H, W), ``logits`` (classes,), ``target`` (a class index or a :class:`Contrast` of
    two), ``layers`` (recorded layer names) and
    ``activations``/``relevances`` (``{layer: tensor}`` without the batch dimension). Queries take ``lock`` (the
    explainer's, whose model they run backward passes on; their own when none is given) themselves.
    """

    def __init__(self, relevance_model, trace, logits, target, layers, concept, memory_budget, lock=None):
        self._lock = lock or threading.RLock()
        self._model = relevance_model
        self._trace = trace
        self._concept = concept
        self._budget = memory_budget
        self.logits = logits[0]
        self.target = target
        self.layers = list(layers)
        nodes = {name: relevance_model.node(name) for name in self.layers}
        found = relevance_from_logits(relevance_model, trace, logits, [target], nodes.values())
        self.heatmap = pixel_relevance(found[relevance_model.input_node])[0]
        self._extra_maps = {}  # {(layer, tokens): class-token heatmaps per concept}, see _extra_token_heatmaps
        self._relevances = {name: relevance_model.concept_view(name, found.get(node))
                            for name, node in nodes.items()}  # concept axis at dim 1
        self.relevances = {name: r[0] for name, r in self._relevances.items() if r is not None}
        self.activations = {name: self._model.concept_view(name, trace.values[node])[0] for name, node in nodes.items()}

    # -- rankings -----------------------------------------------------------------------------------------------
    def _layer(self, layer):
        if not isinstance(layer, str):
            raise TypeError(f"layer must be a layer name (a string); got {type(layer).__name__}")
        if layer not in self._relevances:
            raise UnknownLayerError(f"layer {layer!r} was not recorded in this explanation; recorded layers: "
                           f"{', '.join(self.layers)}")
        if self._relevances[layer] is None:
            raise ValueError(f"layer {layer!r} does not contribute to the explained output, so it has no relevance")
        return self._relevances[layer]

    def concept_relevance(self, layer: str, region: Region | None = None) -> torch.Tensor:
        """Relevance per concept of ``layer`` (summed over space), optionally only inside an input-space ``region``.

        In a region, a position of a map counts with the share of its footprint the region covers, and a token with
        that of its patch; a class token has no patch, so its relevance is followed down to the pixels (its
        conditional heatmap per concept, computed once per layer) and counted where it lands in the region. At a
        transformer's last block, which holds its relevance in the class token alone, that is CRP's exact local
        relevance.
        """
        with self._lock:
            relevance = self._layer(layer)
            if region is None:
                return self._concept.attribute(relevance)[0]
            image = self._trace.values[self._model.input_node]
            region = check_region(region, image.shape[2:]).to(image.device)
            weights, extra = self._region_weights(layer, region)
            found = self._concept.attribute(relevance, weights)[0]
            if extra and bool(relevance[:, :, :extra].any()):
                found = found + (self._extra_token_heatmaps(layer, extra) * region).flatten(1).sum(1)
            return found

    def _region_weights(self, layer, region):
        """The fraction of each layer position's input-space footprint covered by ``region``: (1, 1, h, w) for maps;
        for tokens (1, 1, N) through the patch grid, a leading class token 0 (an attention's heads: (1, 1, N, 1)).
        Returns it and the number of leading tokens outside the grid."""
        image = self._trace.values[self._model.input_node]
        relevance = self._relevances[layer]
        heads = isinstance(self._model.modules.get(layer), AttentionHeads)
        if relevance.dim() == 3 or heads:  # tokens (1, C, N), or an attention's heads (1, heads, N, head_dim)
            grid, extra = patch_grid(relevance.shape[2], image.shape[2:])
            if grid is None:
                raise ValueError(f"layer {layer!r} has {relevance.shape[2]} tokens, which do not form a patch grid of "
                                 f"the {tuple(image.shape[2:])} input (with or without one class token), so a region "
                                 "cannot be mapped onto them")
            weights = F.pad(F.adaptive_avg_pool2d(region[None, None].to(relevance.dtype), grid).flatten(2), (extra, 0))
            return (weights[..., None] if heads else weights), extra
        if relevance.dim() != 4:
            raise ValueError(f"layer {layer!r} has no spatial extent (output shape {tuple(relevance.shape[1:])}), "
                             "so a region cannot select part of it")
        return F.adaptive_avg_pool2d(region[None, None].to(relevance.dtype), relevance.shape[2:]), 0

    def _extra_token_heatmaps(self, layer, extra):
        """Per concept of token layer ``layer``, the heatmap (C, H, W) of the relevance in its ``extra`` leading tokens
        (the class token) only; computed once per layer."""
        key = (layer, extra)
        if key not in self._extra_maps:
            relevance = self._relevances[layer]
            node = self._model.node(layer)
            output = self._model.concept_view(layer, self._trace.values[node])
            tokens = torch.zeros_like(relevance)
            tokens[:, :, :extra] = 1
            channels = list(range(self._concept.count(output)))
            chunk, heatmaps = self._chunk_size(len(channels)), []
            for start in range(0, len(channels), chunk):
                masks = self._concept.masks(output, channels[start:start + chunk])[:, 0]
                grad = self._model.native_view(layer, masks * tokens * relevance)
                heatmaps.append(pixel_relevance(self._model.propagate(self._trace, node, grad)[self._model.input_node]))
            self._extra_maps[key] = torch.cat(heatmaps)
        return self._extra_maps[key]

    def top_concepts(self, layer: str, k: int = 8, region: Region | None = None) -> list[ConceptScore]:
        """The ``k`` most relevant concepts of ``layer`` (inside ``region`` if given), with their share of the layer's
        absolute relevance (in the region)."""
        k = count("k", k)
        relevance = self.concept_relevance(layer, region)
        total = relevance.abs().sum().clamp_min(torch.finfo(relevance.dtype).tiny)
        values, ids = relevance.topk(min(k, relevance.numel()))
        return [ConceptScore(layer, int(i), float(v), float(v / total)) for v, i in zip(values, ids)]

    # -- conditional relevance -------------------------------------------------------------------------------------
    def _chunk_size(self, count):
        """How many concepts to propagate at once so that the batched backward pass fits the memory budget."""
        values = self._trace.values.values()
        largest = max(v[0].numel() * v.element_size() for v in values if isinstance(v, torch.Tensor) and v.dim())
        return max(1, min(count, int(self._budget // (6 * largest))))

    def conditional_heatmaps(self, layer: str, channels: Iterable[int], chunk_size: int | None = None) -> torch.Tensor:
        """One heatmap per channel of ``layer`` (K, H, W): the relevance flowing through that channel only."""
        with self._lock:
            relevance = self._layer(layer)
            node = self._model.node(layer)
            output = self._model.concept_view(layer, self._trace.values[node])
            channels = self._concept.check_ids(layer, output, channels)
            chunk = count("chunk_size", chunk_size, optional=True) or self._chunk_size(len(channels))
            heatmaps = []
            for start in range(0, len(channels), chunk):
                masks = self._concept.masks(output, channels[start:start + chunk])[:, 0]
                found = self._model.propagate(self._trace, node, self._model.native_view(layer, masks * relevance),
                                              owned=True)
                heatmaps.append(pixel_relevance(found[self._model.input_node]))
            return torch.cat(heatmaps)

    def conditional_heatmap(self, conditions: Mapping[str, Iterable[int]]) -> torch.Tensor:
        """The heatmap restricted to the given channels in each listed layer at once (a CRP condition set).

        ``conditions`` maps layer names to channel lists. Relevance starts at the highest listed layer, restricted to
        its channels, flows down to the next listed layer where it is restricted again, and so on to the input;
        relevance that bypasses a listed layer (e.g. through a shortcut) is excluded, as in zennit-crp.
        """
        with self._lock:
            return pixel_relevance(self._conditioned(conditions, ())[self._model.input_node])[0]

    def path_relevances(self, conditions: Mapping[str, Iterable[int]], lower: Iterable[str]) -> dict[str, torch.Tensor]:
        """Relevance at each layer in ``lower`` (``{name: tensor}``, no batch dimension) under a condition set."""
        with self._lock:
            lower = layer_names(lower, "lower")
            for name in lower:
                self._layer(name)
            nodes = {name: self._model.node(name) for name in lower}
            found = self._conditioned(conditions, nodes.values())
            return {name: self._model.concept_view(name, found[node])[0] for name, node in nodes.items()
                    if node in found}

    def path_concept_relevances(self, conditions: Mapping[str, Iterable[int]],
                                lower: Iterable[str]) -> dict[str, torch.Tensor]:
        """Relevance per concept (summed over space) at each layer in ``lower`` under a condition set: ``{name: (C,)}``
        (what a composition tree ranks sub-concepts by)."""
        with self._lock:
            return {name: self._concept.attribute(relevance[None])[0]
                    for name, relevance in self.path_relevances(conditions, lower).items()}

    def _conditioned(self, conditions, collect):
        if not isinstance(conditions, Mapping):
            raise TypeError(f"conditions must be a dict {{layer: [channels]}}; got {type(conditions).__name__}")
        if not conditions:
            raise ValueError("conditions is empty: give {layer: [channels]} for at least one layer")
        for layer in conditions:
            self._layer(layer)
        order = self._model.nodes
        ordered = sorted(conditions, key=lambda name: order.index(self._model.node(name)), reverse=True)
        top = ordered[0]
        masks = {self._model.node(layer): self._mask(layer, conditions[layer]) for layer in ordered}
        below = self._model.ancestors(self._model.node(top))
        for layer in ordered[1:]:
            if self._model.node(layer) not in below:
                raise ValueError(f"layer {layer!r} is not on the path from {top!r} to the input, so relevance of "
                                 f"{top!r} cannot be conditioned on it")
        start = self._model.node(top)
        grad = self._model.native_view(top, self._relevances[top]) * masks.pop(start)
        return self._model.propagate(self._trace, start, grad, collect, masks)

    def _mask(self, layer, channels):
        output = self._model.concept_view(layer, self._trace.values[self._model.node(layer)])
        ids = self._concept.check_ids(layer, output, channels)
        return self._model.native_view(layer, self._concept.masks(output, ids).sum(0).clamp(max=1))

    def lower_layers(self, layer: str) -> list[str]:
        """The recorded layers directly below ``layer``: reached from it without passing another recorded layer."""
        with self._lock:
            self._layer(layer)
            return self._model.lower_layers(layer, [name for name in self.layers if name in self.relevances])
