"""Object detection in the shapes world: boxes from the object masks, the CenterNet-style targets and decoding of
:class:`~conceptscope.world.dense_nets.ShapesDetector`, non-maximum suppression and mAP.

The objects to detect are those that make the image's label true (``evidence_mask``), each labelled with the image's
class — the same question the segmenter and the classifier answer (see :mod:`.segmentation`).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, box_iou

from ..engine import Output
from ..engine.segments import Segment
from .dataset import normalize
from .rules import evidence


def box_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The tight box (x0, y0, x1, y1) in pixel-edge coordinates around a non-empty bool mask."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def object_boxes(dataset, index) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (n, 4) of item ``index``'s class-defining objects, from their masks, and their classes (n,)."""
    label, objects = dataset.label(index), dataset.objects(index)
    boxes = [box_of(objects[k]["mask"]) for k in evidence(objects, label)]
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.full((len(boxes),), label)


def encode(boxes, labels, num_classes, size, stride=4):
    """Training targets for one image: a centre heatmap (classes, G, G) with a Gaussian around each box's centre
    cell (1 there), the distances (4, G, G) from each centre cell's centre to its box's edges, and the centre cells
    (G, G)."""
    grid = size // stride
    heatmap, distances, centres = torch.zeros(num_classes, grid, grid), torch.zeros(4, grid, grid), torch.zeros(
        grid, grid, dtype=torch.bool)
    cells = (torch.arange(grid) + 0.5) * stride
    for (x0, y0, x1, y1), label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sigma = max(x1 - x0, y1 - y0) / 6
        gauss = torch.exp(-((cells[None, :] - cx) ** 2 + (cells[:, None] - cy) ** 2) / (2 * sigma ** 2))
        i, j = min(int(cy // stride), grid - 1), min(int(cx // stride), grid - 1)
        gauss[i, j] = 1.0
        heatmap[label] = torch.maximum(heatmap[label], gauss)
        centre_x, centre_y = float(cells[j]), float(cells[i])
        distances[:, i, j] = torch.tensor([centre_x - x0, centre_y - y0, x1 - centre_x, y1 - centre_y])
        centres[i, j] = True
    return heatmap, distances, centres


def decode(heatmap: torch.Tensor, boxes: torch.Tensor, stride: int = 4, threshold: float = 0.1, top: int = 20,
           iou: float = 0.5) -> list[dict]:
    """Detections from the detector's dense outputs (B, classes, G, G) and (B, 4, G, G): the local maxima (3x3) of the
    centre probabilities above ``threshold`` (at most ``top``), their boxes, then per-class non-maximum suppression.

    One dict per image: ``boxes`` (n, 4) x0, y0, x1, y1 in pixels, ``scores`` (n,), ``labels`` (n,) and ``cells``
    (n, 3): (class, row, column) of each detection's heatmap cell, from which :func:`detection_output` makes the
    target that explains a detection's score or one of its box edges.
    """
    probabilities = torch.sigmoid(heatmap.detach())
    peaks = probabilities * (F.max_pool2d(probabilities, 3, stride=1, padding=1) == probabilities)
    grid_w = heatmap.shape[3]
    found = []
    for row in range(heatmap.shape[0]):
        scores, flat = peaks[row].flatten().topk(min(top, peaks[row].numel()))
        keep = scores > threshold
        scores, flat = scores[keep], flat[keep]
        cells = torch.stack([flat // (heatmap.shape[2] * grid_w), flat // grid_w % heatmap.shape[2], flat % grid_w], 1)
        centre_y, centre_x = (cells[:, 1] + 0.5) * stride, (cells[:, 2] + 0.5) * stride
        edges = boxes[row].detach()[:, cells[:, 1], cells[:, 2]]
        xyxy = torch.stack([centre_x - edges[0], centre_y - edges[1], centre_x + edges[2], centre_y + edges[3]], 1)
        kept = batched_nms(xyxy, scores, cells[:, 0], iou)
        found.append({"boxes": xyxy[kept], "scores": scores[kept], "labels": cells[kept, 0], "cells": cells[kept]})
    return found


def detection_output(detections: dict, k: int, edge: int | None = None) -> Output:
    """The target that explains detection ``k`` of one image's decoded detections (:func:`decode`): its score
    (``cs.Output`` on the heatmap, the detector's output 0) or, given ``edge`` (0 left, 1 top, 2 right, 3 bottom), that
    box edge's distance (on output 1)."""
    count = len(detections["scores"])
    if not isinstance(k, int) or not 0 <= k < count:
        raise IndexError(f"detection {k!r} does not exist: this image has {count} detection(s)"
                         + (f"; choose 0..{count - 1}" if count else "; lower decode's threshold to find more"))
    cls, row, column = detections["cells"][k].tolist()
    if edge is None:
        return Output((cls, row, column))
    if edge not in range(4):
        raise ValueError(f"edge must be 0 (left), 1 (top), 2 (right) or 3 (bottom), got {edge!r}")
    return Output((edge, row, column))


@torch.no_grad()
def detect(model, images, batch=250, **kwargs) -> list[dict]:
    """Decoded detections (:func:`decode`) of uint8 NxHxWx3 ``images``."""
    found = []
    for k in range(0, len(images), batch):
        found += decode(*model(normalize(images[k:k + batch])), stride=model.stride, **kwargs)
    return found


def average_precisions(detections: list[dict], truths: list[tuple], num_classes: int, iou: float = 0.5) -> np.ndarray:
    """Average precision per class (VOC all-point interpolation) at IoU ``iou``: detections by falling score, each
    a hit if it overlaps a not yet matched true box of its class by at least ``iou``. ``truths`` holds (boxes, labels)
    per image; NaN for a class without true boxes."""
    precisions = np.full(num_classes, np.nan)
    for cls in range(num_classes):
        total = sum(int((labels == cls).sum()) for _, labels in truths)
        if total == 0:
            continue
        scored, overlaps = [], {}
        for image, (found, (boxes, labels)) in enumerate(zip(detections, truths)):
            mine = found["labels"] == cls
            overlaps[image] = box_iou(found["boxes"][mine], boxes[labels == cls])
            scored += [(float(score), image, row) for row, score in enumerate(found["scores"][mine])]
        scored.sort(key=lambda item: -item[0])
        matched, hits = set(), []
        for _, image, row in scored:
            candidates = [(float(o), k) for k, o in enumerate(overlaps[image][row]) if o >= iou
                          and (image, k) not in matched]
            if candidates:
                matched.add((image, max(candidates)[1]))
            hits.append(bool(candidates))
        hits = np.array(hits, dtype=float)
        recall = np.concatenate([[0], np.cumsum(hits) / total])
        precision = np.concatenate([[1], np.cumsum(hits) / np.arange(1, len(hits) + 1)])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        precisions[cls] = float(np.sum(np.diff(recall) * precision[1:]))
    return precisions


def mean_average_precision(detections, truths, num_classes, iou=0.5) -> float:
    """mAP at IoU ``iou``: the mean of :func:`average_precisions` over the classes with true boxes."""
    return float(np.nanmean(average_precisions(detections, truths, num_classes, iou)))


def detection_segments(model, classes=None, **kwargs):
    """What the explorer lets a user pick on a detector (``cs.explore(xp, image, segments=detection_segments(model,
    world.classes))``): a function of a model input (C, H, W) giving its decoded detections (:func:`decode` with
    ``kwargs``), strongest first, as :class:`~conceptscope.engine.segments.Segment` boxes, each explained by its score
    (:func:`detection_output`)."""

    def segments(image: torch.Tensor) -> list[Segment]:
        with torch.no_grad():
            found = decode(*model(image[None]), stride=model.stride, **kwargs)[0]
        height, width = image.shape[1:]
        picked = []
        for k in range(len(found["scores"])):
            x0, y0, x1, y1 = found["boxes"][k].tolist()
            box = (max(0, int(x0)), max(0, int(y0)), min(width, max(int(x0) + 1, round(x1))),
                   min(height, max(int(y0) + 1, round(y1))))
            cls = int(found["labels"][k])
            name = classes[cls] if classes is not None else f"class {cls}"
            picked.append(Segment(name, cls, detection_output(found, k), box, None, float(found["scores"][k])))
        return picked

    return segments
