"""One explained image: the retained relevance graph, and the CRP queries answered from it.

The forward pass runs once; every conditional heatmap, concept ranking and composition step is a backward pass
through the retained graph from a recorded layer down, batched over concepts with ``is_grads_batched``.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .inputs import check_region


@dataclass(frozen=True)
class ConceptScore:
    """A concept of a layer with its relevance and its share of the layer's (absolute) relevance."""
    layer: str
    channel: int
    relevance: float
    share: float


class Explanation:
    """Heatmap, prediction, target and per-layer activations and relevances of one image, plus CRP queries.

    Attributes: ``heatmap`` (H, W), ``logits`` (classes,), ``target`` (int), ``activations`` and ``relevances``
    (``{layer: tensor}`` without the batch dimension).
    """

    def __init__(self, input, logits, outputs, target, concept, memory_budget):
        self._input = input
        self._outputs = outputs
        self._concept = concept
        self._budget = memory_budget
        self.logits = logits.detach()[0]
        self.target = target
        initial = torch.zeros_like(logits)
        initial[0, target] = logits[0, target].detach()
        names = list(outputs)
        grads = torch.autograd.grad(logits, [input, *outputs.values()], initial, retain_graph=True, allow_unused=True)
        self.heatmap = grads[0][0].sum(0).detach()
        self._relevances = {name: grad for name, grad in zip(names, grads[1:])}
        self.layers = [name for name in names if self._relevances[name] is not None]
        self.relevances = {name: self._relevances[name][0].detach() for name in self.layers}
        self.activations = {name: outputs[name][0].detach() for name in self.layers}

    # -- rankings -----------------------------------------------------------------------------------------------
    def _layer(self, layer):
        if layer not in self._relevances:
            raise KeyError(f"layer {layer!r} was not recorded in this explanation; recorded layers: "
                           f"{', '.join(self._outputs)}")
        if self._relevances[layer] is None:
            raise ValueError(f"layer {layer!r} does not contribute to the explained output, so it has no relevance")
        return self._relevances[layer]

    def concept_relevance(self, layer, region=None):
        """Relevance per concept of ``layer`` (summed over space), optionally only inside an input-space ``region``."""
        relevance = self._layer(layer)
        weights = None
        if region is not None:
            weights = self._region_weights(layer, region)
        return self._concept.attribute(relevance, weights)[0].detach()

    def _region_weights(self, layer, region):
        """The fraction of each layer position's input-space footprint covered by ``region``, shape (1, 1, h, w)."""
        region = check_region(region, self._input.shape[2:]).to(self._input.device)
        relevance = self._relevances[layer]
        if relevance.dim() != 4:
            raise ValueError(f"layer {layer!r} has no spatial extent (output shape {tuple(relevance.shape[1:])}), "
                             "so a region cannot select part of it")
        return F.adaptive_avg_pool2d(region[None, None].to(relevance.dtype), relevance.shape[2:])

    def top_concepts(self, layer, k=8, region=None):
        """The ``k`` most relevant concepts of ``layer`` (inside ``region`` if given), with their share of the layer's
        absolute relevance (in the region)."""
        relevance = self.concept_relevance(layer, region)
        total = relevance.abs().sum().clamp_min(torch.finfo(relevance.dtype).tiny)
        values, ids = relevance.topk(min(k, relevance.numel()))
        return [ConceptScore(layer, int(i), float(v), float(v / total)) for v, i in zip(values, ids)]

    # -- conditional relevance -------------------------------------------------------------------------------------
    def _chunk_size(self, layer, count):
        """How many concepts to propagate at once so that the batched backward pass fits the memory budget."""
        below = [out for name, out in self._outputs.items() if name in self._relevances]
        largest = max([self._input.numel(), *(out.numel() for out in below)]) * self._input.element_size()
        return max(1, min(count, int(self._budget // (4 * largest))))

    def conditional_heatmaps(self, layer, channels, chunk_size=None):
        """One heatmap per channel of ``layer`` (K, H, W): the relevance flowing through that channel only."""
        relevance = self._layer(layer)
        output = self._outputs[layer]
        channels = self._concept.check_ids(layer, output, channels)
        chunk = chunk_size or self._chunk_size(layer, len(channels))
        heatmaps = []
        for start in range(0, len(channels), chunk):
            masks = self._concept.masks(output, channels[start:start + chunk])
            (grads,) = torch.autograd.grad(output, self._input, masks * relevance, retain_graph=True,
                                           is_grads_batched=True)
            heatmaps.append(grads[:, 0].sum(1).detach())
        return torch.cat(heatmaps)

    def conditional_heatmap(self, conditions):
        """The heatmap restricted to the given channels in each listed layer at once (a CRP condition set).

        ``conditions`` maps layer names to channel lists. Relevance starts at the highest listed layer, restricted to
        its channels, flows down to the next listed layer where it is restricted again, and so on to the input;
        relevance that bypasses a listed layer (e.g. through a shortcut) is excluded, as in zennit-crp.
        """
        upper, grad = self._condition(conditions)
        (grad,) = torch.autograd.grad(upper, self._input, grad, retain_graph=True)
        return grad[0].sum(0).detach()

    def path_relevances(self, conditions, lower):
        """Relevance at each layer in ``lower`` (``{name: tensor}``, no batch dimension) under a condition set."""
        upper, grad = self._condition(conditions)
        grads = torch.autograd.grad(upper, [self._outputs[name] for name in lower], grad, retain_graph=True,
                                    allow_unused=True)
        return {name: g[0].detach() for name, g in zip(lower, grads) if g is not None}

    def _condition(self, conditions):
        """Apply a condition set from its highest layer down; return the lowest listed output and its relevance."""
        if not conditions:
            raise ValueError("conditions is empty: give {layer: [channels]} for at least one layer")
        order = list(self._outputs)
        for layer in conditions:
            self._layer(layer)
        ordered = sorted(conditions, key=order.index, reverse=True)
        top = ordered[0]
        grad = self._relevances[top] * self._mask_sum(top, conditions[top])
        upper = self._outputs[top]
        for layer in ordered[1:]:
            (grad,) = torch.autograd.grad(upper, self._outputs[layer], grad, retain_graph=True, allow_unused=True)
            if grad is None:
                raise ValueError(f"layer {layer!r} is not on the path from {top!r} to the input, so relevance of "
                                 f"{top!r} cannot be conditioned on it")
            upper = self._outputs[layer]
            grad = grad * self._mask_sum(layer, conditions[layer])
        return upper, grad

    def _mask_sum(self, layer, channels):
        output = self._outputs[layer]
        ids = self._concept.check_ids(layer, output, channels)
        return self._concept.masks(output, ids).sum(0).clamp(max=1)

    def lower_layers(self, layer):
        """The recorded layers directly below ``layer``: reached from it without passing another recorded layer."""
        self._layer(layer)
        owners = {out.grad_fn: name for name, out in self._outputs.items() if out.grad_fn is not None}
        found, seen, stack = [], set(), [fn for fn, _ in self._outputs[layer].grad_fn.next_functions if fn]
        while stack:
            fn = stack.pop()
            if fn in seen:
                continue
            seen.add(fn)
            if fn in owners:
                found.append(owners[fn])
                continue
            stack.extend(next_fn for next_fn, _ in fn.next_functions if next_fn is not None)
        return [name for name in self._outputs if name in found]
