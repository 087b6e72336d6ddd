"""Relevance-based pruning (PXP, Yeom et al. 2021; Hatefi et al. 2024): rank channels by their relevance over a
reference set of images, prune the least relevant, and compare with activation, weight-norm and random criteria.

Channels are those the explanations see: the model is copied, its BatchNorm layers merged into the convolutions (the
Explainer's canonizers), and a pruned channel's weights and bias are set to zero, so its output is exactly zero. The
pruned model is that new copy; the user's model is never changed.

Criteria, per channel of a layer (lower = pruned first):
- ``"relevance"``: mean over the reference images of the channel's share of the layer's relevance for the image's
  target, ``R_c / sum_c |R_c|`` (each image counts alike; negative relevance counts against a channel).
- ``"activation"``: mean absolute activation over images and positions.
- ``"weight"``: L1 norm of the channel's (merged) filter (Li et al. 2017).
- ``"random"``: a seeded random ranking.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models import check_layer
from ..models.private import private_copy
from ._common import as_images, check_batch_size, new_axes, per_channel, scores

CRITERIA = ("relevance", "activation", "weight", "random")


def channel_scores(explainer, images, layers, criterion="relevance", targets=None, *, batch_size=64, seed=0):
    """``{layer: (C,) scores}`` of ``criterion`` over the reference ``images`` (targets: labels, or None for the
    predictions); the lowest scores are pruned first."""
    layers = _check_layers(explainer.model, layers)
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; use one of {', '.join(map(repr, CRITERIA))}")
    if criterion == "random":
        generator = torch.Generator().manual_seed(seed)
        return {layer: torch.rand(explainer.layers[layer], generator=generator, dtype=torch.float64)
                for layer in layers}
    if criterion == "weight":
        copy = private_copy(explainer.model, explainer.composite.canonizers)
        modules = dict(copy.named_modules())
        return {layer: modules[layer].weight.detach().flatten(1).abs().sum(1).double().cpu() for layer in layers}
    images = as_images(images, explainer.model)
    batch_size = check_batch_size(batch_size)
    targets = None if targets is None else torch.as_tensor(targets).tolist()
    totals = {}
    for start in range(0, len(images), batch_size):
        part = slice(start, start + batch_size)
        attribution = explainer.attribute(images[part], None if targets is None else targets[part], layers=layers,
                                          heatmaps=False)
        for layer in layers:
            if criterion == "relevance":
                shares = per_channel(attribution.relevances[layer]).double()
                shares = shares / shares.abs().sum(1, keepdim=True).clamp_min(1e-30)
            else:
                values = attribution.activations[layer].abs().double()
                shares = values.flatten(2).mean(2) if values.dim() > 2 else values
            totals[layer] = totals.get(layer, 0) + shares.sum(0).cpu()
    return {layer: total / len(images) for layer, total in totals.items()}


def prune(explainer, channel_scores, rate, scope="global"):
    """A new model: the explainer's model with BatchNorm merged and the channels of lowest score switched off (weights
    and bias zero). ``rate`` in [0, 1) is the share of channels to remove: ``floor(rate * C)`` in each layer of
    ``channel_scores`` (``scope="layer"``), or ``floor(rate * all channels)`` ranked across the layers
    (``scope="global"``, as PXP does; each layer's scores are first divided by the sum of their absolute values, so
    that layers compare: relevance shares sum to one per layer by conservation). Returns the model and the number of
    channels pruned per layer."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
        raise ValueError(f"pruning rate must be in [0, 1) (the share of channels to remove), got {rate!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    names = list(channel_scores)
    values = [torch.as_tensor(channel_scores[name]).double().cpu() for name in names]
    if scope == "layer":
        chosen = [torch.sort(v, stable=True).indices[:int(rate * len(v))] for v in values]
    else:
        shares = torch.cat([v / v.abs().sum().clamp_min(1e-30) for v in values])
        owner = torch.cat([torch.full((len(v),), i) for i, v in enumerate(values)])
        offsets = np.cumsum([0] + [len(v) for v in values])
        lowest = torch.sort(shares, stable=True).indices[:int(rate * len(shares))]
        chosen = [lowest[owner[lowest] == i] - offsets[i] for i in range(len(values))]
    model = private_copy(explainer.model, explainer.composite.canonizers)
    modules = dict(model.named_modules())
    for name, pruned in zip(names, chosen):
        module = modules[name]
        pruned = pruned.to(module.weight.device)
        module.weight.data[pruned] = 0
        if module.bias is not None:
            module.bias.data[pruned] = 0
    return model, {name: len(pruned) for name, pruned in zip(names, chosen)}


@dataclass(frozen=True)
class PruningCurves:
    """Accuracy (0..1) of the pruned models per criterion: ``accuracy[criterion]`` (len(rates),), with
    ``channels[i]`` channels removed in all at ``rates[i]`` over ``layers`` (``total`` channels)."""
    rates: np.ndarray
    accuracy: dict
    channels: np.ndarray
    total: int
    layers: list
    settings: dict = field(default_factory=dict)

    def tolerated(self, loss=0.01):
        """Per criterion: the largest rate (and channel count) whose accuracy is within ``loss`` of the unpruned
        model's (rate 0 must be among the rates)."""
        if self.rates[0] != 0:
            raise ValueError("tolerated() needs rate 0 (the unpruned model) as the first rate")
        result = {}
        for criterion, accuracy in self.accuracy.items():
            last = 0
            while last + 1 < len(accuracy) and accuracy[last + 1] >= accuracy[0] - loss - 1e-12:
                last += 1
            result[criterion] = {"rate": float(self.rates[last]), "channels": int(self.channels[last])}
        return result

    def figure(self, ax=None):
        """Accuracy against the pruning rate, one line per criterion."""
        figure, ax = new_axes(ax)
        for criterion, accuracy in self.accuracy.items():
            ax.plot(self.rates, 100 * accuracy, marker="o", markersize=3, label=criterion)
        ax.set_xlabel(f"share of the channels of {len(self.layers)} layers pruned ({self.settings.get('scope')})")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"pruning, {self.total} channels, {self.settings.get('test_images')} test images", fontsize=9)
        ax.legend(fontsize=8)
        return figure


def pruning_curves(explainer, reference, test, layers=None, rates=(0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                   criteria=CRITERIA, *, scope="global", classes=None, batch_size=64, seed=0, progress=True):
    """Accuracy against pruning rate for each criterion: :class:`PruningCurves`.

    ``reference`` and ``test`` are ``(images, labels)``; scores are computed on the reference images for their
    labels, accuracy on the test images; ``scope`` as in :func:`prune`. ``classes`` restricts both to those class
    indices (a model specialised to them: accuracy counts the argmax over all classes). ``layers`` defaults to every
    convolution of the model.
    """
    layers = _check_layers(explainer.model, layers if layers is not None else
                           [name for name, module in explainer.model.named_modules()
                            if isinstance(module, torch.nn.Conv2d)])
    reference_images, reference_labels = _subset(*reference, classes, explainer.model)
    test_images, test_labels = _subset(*test, classes, explainer.model)
    rates = np.asarray(rates, dtype=float)
    for rate in rates:
        if not 0 <= rate < 1:
            raise ValueError(f"pruning rates must be in [0, 1), got {rate}")
    accuracy, channels = {}, {}
    for criterion in tqdm(list(criteria), desc="criteria", disable=not progress):
        ranking = channel_scores(explainer, reference_images, layers, criterion, reference_labels,
                                 batch_size=batch_size, seed=seed)
        accuracy[criterion] = []
        for rate in rates:
            model, pruned = prune(explainer, ranking, float(rate), scope)
            accuracy[criterion].append(_accuracy(model, test_images, test_labels, batch_size))
            channels[rate] = sum(pruned.values())
        accuracy[criterion] = np.array(accuracy[criterion])
    return PruningCurves(rates, accuracy, np.array([channels[rate] for rate in rates]),
                         sum(explainer.layers[layer] for layer in layers), list(layers),
                         dict(reference_images=len(reference_images), test_images=len(test_images),
                              classes=classes, scope=scope, seed=seed))


def _accuracy(model, images, labels, batch_size):
    predicted = scores(model, images, None, "logit", batch_size)[1]
    return float((predicted.cpu() == labels.cpu()).double().mean())


def _subset(images, labels, classes, model):
    images, labels = as_images(images, model), torch.as_tensor(labels).long()
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images and {len(labels)} labels")
    if classes is not None:
        keep = torch.isin(labels, torch.as_tensor(list(classes)))
        if not keep.any():
            raise ValueError(f"no image has one of the classes {list(classes)}")
        images, labels = images[keep.to(images.device)], labels[keep]
    return images, labels


def _check_layers(model, layers):
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("no layers to prune; name convolution or linear layers of the model")
    for layer in layers:
        module = check_layer(model, layer)
        if not hasattr(module, "weight") or module.weight is None or module.weight.dim() < 2:
            raise ValueError(f"layer {layer!r} ({type(module).__name__}) has no channels to prune; name a convolution "
                             "or linear layer")
    return layers
