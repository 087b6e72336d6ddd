"""Ground-truth channel selectivity: which channels of a layer encode which concepts of the shapes world.

A channel *encodes* a concept when its activation separates the objects that have the concept from all other objects
(ROC AUC >= 0.9). Each object is summarised by the channel's maximum over the object's region at the layer's
resolution, so the figure says "this channel fires on red objects", independent of how many objects an image holds.
This is the ground truth against which concept search and labelling (SemanticLens) are scored.

Activations are the engine's: the layer outputs of the :class:`~conceptscope.Explainer`'s private canonized copy of the
model (BatchNorm merged into the convolution before it), i.e. the values the atlas ranks its ActMax references by. The
user's model is never run, hooked or changed.
"""
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import Explainer
from .api import SPLIT_SEEDS
from .concepts import ATTRIBUTES, CORNER_MARK
from .dataset import ShapesDataset
from .rules import CLASSES

#: a layer cell belongs to an object's region when the object covers at least this share of the cell's pixels
COVERAGE = 0.5
#: the encoding threshold on the AUC
THRESHOLD = 0.9
#: in the spurious variant, ``probe_dataset`` draws the corner mark on this share of the images, whatever the class
MARK_RATE = 0.5


class ObjectActivations(NamedTuple):
    """``activations``: ``{layer: (objects, channels) float tensor}``; ``attributes``: one dict per (pseudo-)object.

    Each dict has ``image`` (dataset index), ``kind`` (``"object"``, ``"corner_mark"`` for the spurious mark, or
    ``"corner"`` for the mark's empty place in an image without it) and the attributes shape, colour, texture, size
    and position (None for the pseudo-objects).
    """

    activations: dict
    attributes: list


def object_activations(model_or_explainer, dataset: ShapesDataset, layers, batch_size: int = 100) -> ObjectActivations:
    """Per layer, every channel's maximum activation over each object of each image of ``dataset``.

    The object's pixel mask is mapped to the layer's grid by area: a cell is in the object's region when the object
    covers >= ``COVERAGE`` of it, and the object's best-covered cell always is, so small objects keep >= 1 cell while a
    neighbour that only grazes a cell does not claim it. Datasets with the corner mark add the mark as a pseudo-object
    and, in images without it, its empty place (a negative for the mark, so that a corner-mark channel has to tell the
    mark from its place). Forward passes only, ``batch_size`` images at a time, on the explainer's private model copy.
    """
    if len(dataset) == 0:
        raise ValueError("object_activations needs a non-empty dataset")
    explainer = model_or_explainer if isinstance(model_or_explainer, Explainer) else Explainer(model_or_explainer)
    names = [layers] if isinstance(layers, str) else list(layers)
    marked = CORNER_MARK in dataset.concepts
    found, attributes = {name: [] for name in names}, []
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        masks, owners = [], []
        for position, index in enumerate(indices):
            for obj in dataset.objects(index):
                masks.append(obj.pop("mask"))
                attributes.append({"image": index, "kind": "object", **obj})
                owners.append(position)
            if marked:
                mark = dataset.masks(index)[CORNER_MARK]
                kind = "corner_mark" if mark.any() else "corner"
                masks.append(mark if mark.any() else _mark_region(dataset.size))
                attributes.append({"image": index, "kind": kind, **dict.fromkeys(ATTRIBUTES)})
                owners.append(position)
        outputs = _layer_outputs(explainer, torch.stack([dataset[i][0] for i in indices]), names)
        masks, owners = torch.from_numpy(np.stack(masks)), torch.tensor(owners)
        for name, output in outputs.items():
            found[name].append(_region_max(output, masks.to(output.device), owners.to(output.device)))
    return ObjectActivations({name: torch.cat(parts).cpu() for name, parts in found.items()}, attributes)


def auc(scores, positive) -> torch.Tensor:
    """ROC AUC of ``scores`` (N,) or (N, channels) for the bool labels ``positive`` (N,): Mann–Whitney U / (n1 n0).

    The share of (positive, negative) pairs where the positive scores higher, ties counting 0.5; one value per
    channel (float64), NaN where either class is empty. Each positive is located among the sorted negatives.
    """
    scores = torch.as_tensor(scores).double()
    positive = torch.as_tensor(positive, dtype=torch.bool, device=scores.device)
    columns = scores[:, None] if scores.ndim == 1 else scores
    positives, negatives = columns[positive].T.contiguous(), columns[~positive].T.sort(dim=1).values.contiguous()
    pairs = positives.shape[1] * negatives.shape[1]
    if pairs == 0:
        result = columns.new_full(columns.shape[1:], float("nan"))
    else:
        below = torch.searchsorted(negatives, positives)
        not_above = torch.searchsorted(negatives, positives, right=True)
        result = (below + not_above).sum(1).double() / (2 * pairs)
    return result[0] if scores.ndim == 1 else result


def concept_labels(attributes, concepts) -> torch.Tensor:
    """Bool (objects, concepts): whether each (pseudo-)object has each concept.

    A concept is an attribute value ("red"), ``"corner_mark"``, or a conjunction of values separated by spaces, as
    in the class rules ("red circle": red and a circle).
    """
    def has(obj, concept):
        values = {obj["kind"], *(obj[attribute] for attribute in ATTRIBUTES)}
        return all(part in values for part in concept.split())
    return torch.tensor([[has(obj, concept) for concept in concepts] for obj in attributes],
                        dtype=torch.bool).reshape(len(attributes), len(concepts))


def selectivity(activations, attributes, concepts):
    """AUC (channels, concepts) of each channel for each concept: objects with the concept vs all other objects.

    The pseudo-objects (the corner mark and its empty place) take part only for ``"corner_mark"``: as easy negatives
    they would lift every object concept's AUC. ``activations`` is one (objects, channels) tensor or
    ``{layer: tensor}`` (then the result is a dict too).
    """
    if isinstance(activations, dict):
        return {name: selectivity(values, attributes, concepts) for name, values in activations.items()}
    labels = concept_labels(attributes, concepts)
    objects = torch.tensor([obj["kind"] == "object" for obj in attributes], dtype=torch.bool)
    columns = []
    for k, concept in enumerate(concepts):
        rows = torch.ones_like(objects) if concept == CORNER_MARK else objects
        columns.append(auc(activations[rows], labels[rows, k]))
    return torch.stack(columns, dim=1)


def probe_dataset(world, n: int = 300, seed: int | None = None) -> ShapesDataset:
    """``n`` test images (``seed`` overrides the test split's) to measure selectivity on.

    In the spurious variant the corner mark is drawn on ``MARK_RATE`` of the images independently of the class, so a
    corner-mark channel is told apart from a channel for the class the mark went with in training.
    """
    if CORNER_MARK not in world.concepts:
        return world.dataset("test", n=n, seed=seed)
    return ShapesDataset(n, SPLIT_SEEDS["test"] if seed is None else seed, mark_rates=(MARK_RATE,) * len(CLASSES))


def encoding_channels(world, model, layer: str, threshold: float = THRESHOLD, n: int = 300,
                      seed: int | None = None) -> dict:
    """``{concept: [channels of layer with AUC >= threshold]}`` for every concept of ``world``, on ``probe_dataset``.

    ``model`` is a model or an :class:`~conceptscope.Explainer`.
    """
    activations, attributes = object_activations(model, probe_dataset(world, n, seed), layer)
    scores = selectivity(activations[layer], attributes, world.concepts)
    return {concept: (scores[:, k] >= threshold).nonzero()[:, 0].tolist() for k, concept in enumerate(world.concepts)}


def _layer_outputs(explainer, images, names):
    """``{layer: (B, C, h, w) output}`` of one forward pass of the explainer's private copy; tokens (B, D, N) laid out
    on their patch grid (a token's region is its patch; a class token, which has none, left out), an attention's heads
    first reduced to tokens (:meth:`Explainer.activation_maps`)."""
    _, outputs = explainer.forward(images, names)
    for name, output in outputs.items():
        output = explainer.activation_maps(name, output, images.shape[2:])
        if output.ndim != 4:
            raise ValueError(f"layer {name!r} has no (batch, channels, height, width) output nor tokens on a patch "
                             "grid; selectivity needs a map")
        outputs[name] = output
    return outputs


def _region_max(output, masks, owners):
    """(objects, C): the maximum of ``output[owner]`` over each object's region on the (h, w) grid."""
    coverage = F.adaptive_avg_pool2d(masks[:, None].float(), output.shape[-2:])[:, 0].flatten(1)
    cells = ((coverage >= COVERAGE) | (coverage == coverage.amax(1, keepdim=True))) & (coverage > 0)
    objects, flat = cells.nonzero(as_tuple=True)
    values = output.flatten(2)[owners[objects], :, flat]  # (pairs, C)
    index = objects[:, None].expand(-1, values.shape[1])
    return values.new_full((len(masks), values.shape[1]), float("-inf")).scatter_reduce_(0, index, values, "amax")


@lru_cache(maxsize=4)
def _mark_region(size):
    """Where the corner mark is drawn in images of ``size`` px (bool mask)."""
    mask = ShapesDataset(1, 0, size, mark_rates=(1.0,) * len(CLASSES)).masks(0)[CORNER_MARK]
    mask.flags.writeable = False
    return mask
