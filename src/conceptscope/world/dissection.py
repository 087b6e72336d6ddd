"""Network dissection (Bau et al. 2017) on the shapes world: units labelled by the IoU of their thresholded
activation maps with the world's per-object concept masks, no Broden needed.

For unit k of a layer, its threshold T_k is the top ``quantile`` of its activations over every position of every
image of the dataset (0.995: the top 0.5 %, as in the paper); its map, bilinearly upsampled to the image, is
thresholded at T_k, and IoU_{k,c} = sum over images |M_k ∩ L_c| / sum |M_k ∪ L_c|, L_c the pixels of the objects
having concept c. Concepts are attribute values ("red", "circle", "striped", "large") and conjunctions of them
separated by spaces ("red circle", the class rules' conjunctions by default). A unit is a *detector* of its best
concept when that IoU reaches ``threshold`` (the paper's 0.04 by default).

Activations are the engine's (the :class:`~conceptscope.Explainer`'s private canonized copy, BatchNorm merged), as
for :mod:`.selectivity`, whose ground truth the labels are compared with in :func:`agreement`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import Explainer
from .concepts import ATTRIBUTES, COLOURS, SHAPES, SIZES, TEXTURES
from .rules import RULES

#: the rules' conjunctions ("red circle", "blue striped", "green square", "large triangle")
CONJUNCTIONS = tuple(" ".join(value for _, value in rule.conditions) for rule in RULES if len(rule.conditions) > 1)
#: the concepts dissected by default: colours, shapes, textures, sizes and the class rules' conjunctions
CONCEPTS = (*COLOURS, *SHAPES, *TEXTURES, *SIZES, *CONJUNCTIONS)
QUANTILE = 0.995
THRESHOLD = 0.04


def concept_masks(dataset, index, concepts=CONCEPTS) -> np.ndarray:
    """Bool (concepts, H, W): per concept the pixels of the objects of image ``index`` that have every part of it."""
    objects = dataset.objects(index)
    masks = np.zeros((len(concepts), dataset.size, dataset.size), dtype=bool)
    for k, concept in enumerate(concepts):
        for obj in objects:
            values = {obj[attribute] for attribute in ATTRIBUTES}
            if all(part in values for part in concept.split()):
                masks[k] |= obj["mask"]
    return masks


@dataclass(frozen=True)
class Dissection:
    """The dissection of one layer: ``iou`` (units, concepts) float64, ``thresholds`` (units,) and the settings."""

    layer: str
    concepts: tuple
    iou: torch.Tensor
    thresholds: torch.Tensor
    quantile: float

    def best(self) -> list[tuple[int, str, float]]:
        """``(unit, concept, IoU)`` of each unit's best concept."""
        values, indices = self.iou.max(1)
        return [(unit, self.concepts[k], float(v))
                for unit, (v, k) in enumerate(zip(values.tolist(), indices.tolist()))]

    def detectors(self, threshold: float = THRESHOLD) -> dict[str, list[int]]:
        """``{concept: [units whose best concept it is, with IoU >= threshold]}`` (concepts without units left out)."""
        found = {}
        for unit, concept, value in self.best():
            if value >= threshold:
                found.setdefault(concept, []).append(unit)
        return found

    def summary(self, thresholds=(0.04, 0.1, 0.2)) -> list[dict]:
        """Per IoU threshold: how many units are detectors and how many distinct concepts they detect."""
        rows = []
        for threshold in thresholds:
            found = self.detectors(threshold)
            rows.append({"layer": self.layer, "threshold": threshold, "units": len(self.thresholds),
                         "detectors": sum(map(len, found.values())), "concepts": len(found)})
        return rows


def dissect(model_or_explainer, dataset, layer: str, concepts=CONCEPTS, quantile: float = QUANTILE,
            batch_size: int = 100) -> Dissection:
    """Dissect ``layer`` of the model over ``dataset`` (a shapes-world dataset): two forward passes over it, the
    first for the thresholds, the second for the IoUs, ``batch_size`` images at a time."""
    if len(dataset) == 0:
        raise ValueError("dissect needs a non-empty dataset")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    concepts = tuple(concepts)
    explainer = model_or_explainer if isinstance(model_or_explainer, Explainer) else Explainer(model_or_explainer)
    batches = [range(start, min(start + batch_size, len(dataset))) for start in range(0, len(dataset), batch_size)]

    def activations(indices):
        _, outputs = explainer.forward(torch.stack([dataset[i][0] for i in indices]), [layer])
        output = outputs[layer]
        if output.ndim != 4:
            raise ValueError(f"layer {layer!r} has no (batch, units, height, width) output; dissection needs maps")
        return output

    # the per-unit threshold from the layer's own resolution, as in the paper
    flat = torch.cat([activations(indices).transpose(0, 1).flatten(1) for indices in batches], 1)
    rank = max(1, min(flat.shape[1], int(round(quantile * flat.shape[1]))))
    thresholds = flat.kthvalue(rank, dim=1).values
    del flat
    size = dataset.size
    inter = torch.zeros(len(thresholds), len(concepts), dtype=torch.float64)
    unit_area = torch.zeros(len(thresholds), dtype=torch.float64)
    concept_area = torch.zeros(len(concepts), dtype=torch.float64)
    for indices in batches:
        output = activations(indices)
        upsampled = F.interpolate(output, size=(size, size), mode="bilinear", align_corners=False)
        units = (upsampled > thresholds.to(output.device)[None, :, None, None]).transpose(0, 1).flatten(1).float()
        labels = torch.from_numpy(np.stack([concept_masks(dataset, i, concepts) for i in indices]))
        labels = labels.transpose(0, 1).flatten(1).float().to(units.device)
        inter += (units @ labels.T).double().cpu()
        unit_area += units.sum(1).double().cpu()
        concept_area += labels.sum(1).double().cpu()
    union = unit_area[:, None] + concept_area[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), 0.0)
    return Dissection(layer, concepts, iou, thresholds.cpu(), quantile)


def agreement(dissection: Dissection, auc: torch.Tensor, auc_concepts, threshold: float = THRESHOLD,
              auc_threshold: float = 0.9) -> dict:
    """How the detectors' labels agree with ground-truth selectivity (``auc`` (units, concepts) from
    :func:`~.selectivity.selectivity` over ``auc_concepts``): ``encodes``, the share of detectors whose label the unit
    encodes (AUC >= ``auc_threshold``), and ``same_best``, the share whose label is also the unit's best-AUC concept
    (over the dissected concepts), with ``detectors`` (their count)."""
    columns = [list(auc_concepts).index(c) for c in dissection.concepts]
    auc = torch.as_tensor(auc)[:, columns]
    labelled = [(unit, dissection.concepts.index(concept)) for concept, units in dissection.detectors(threshold).items()
                for unit in units]
    if not labelled:
        return {"layer": dissection.layer, "detectors": 0, "encodes": float("nan"), "same_best": float("nan")}
    encodes = sum(bool(auc[unit, k] >= auc_threshold) for unit, k in labelled) / len(labelled)
    same = sum(int(auc[unit].argmax()) == k for unit, k in labelled) / len(labelled)
    return {"layer": dissection.layer, "detectors": len(labelled), "encodes": encodes, "same_best": same}
