"""Where a concept sits in a reference image: a box around the pixels holding most of its positive relevance, used
to crop the image (CRP's relevance-cropped references) or to dim everything outside it."""
import numpy as np
import torch
import torch.nn.functional as F


def relevant_box(heatmap, share=0.5, padding=0.1, min_size=0.25):
    """``(top, left, bottom, right)`` (bottom/right exclusive) of the smallest set of pixels holding ``share`` of the
    heatmap's positive relevance, padded by ``padding`` x the image side and grown to at least ``min_size`` x the
    image side, kept inside the image. None where the heatmap has no positive relevance."""
    return relevant_boxes(torch.as_tensor(heatmap)[None], share, padding, min_size)[0]


def relevant_boxes(heatmaps, share=0.5, padding=0.1, min_size=0.25):
    """:func:`relevant_box` of each of ``heatmaps`` (N, H, W), with one sort for all of them (numpy's, several times
    faster than torch's on the CPU)."""
    heatmaps = torch.as_tensor(heatmaps).detach().cpu().clamp(min=0)
    count, height, width = heatmaps.shape
    values = np.sort(heatmaps.reshape(count, -1).numpy(), axis=1)[:, ::-1]  # descending
    sums = np.cumsum(values, axis=1, dtype=np.float64)
    needed = np.minimum((sums < share * sums[:, -1:]).sum(1), values.shape[1] - 1)  # first cumulative sum >= share
    kept = heatmaps >= torch.from_numpy(values[np.arange(count), needed].copy())[:, None, None]
    rows, cols = kept.any(2), kept.any(1)
    pad = round(padding * max(height, width))
    extents = zip((sums[:, -1] > 0).tolist(), *(_first_last(found).tolist() for found in (rows, cols)))
    boxes = []
    for positive, (top, bottom), (left, right) in extents:
        if not positive:
            boxes.append(None)
            continue
        top, bottom = _extent(top - pad, bottom + 1 + pad, round(min_size * height), height)
        left, right = _extent(left - pad, right + 1 + pad, round(min_size * width), width)
        boxes.append((top, left, bottom, right))
    return boxes


def _first_last(found):
    """(N, 2) the first and last index where each row of the boolean ``found`` (N, L) is true."""
    length = found.shape[1]
    return torch.stack([found.byte().argmax(1), length - 1 - found.flip(1).byte().argmax(1)], 1)


def reference_box(heatmap, activation, mode):
    """The crop box (in heatmap coordinates) of a reference: from its channel-conditional ``heatmap``, or for ActMax
    references with no positive relevance from the channel's ``activation`` map upsampled; None: the whole image."""
    return reference_boxes(torch.as_tensor(heatmap)[None], [activation], mode)[0]


def reference_boxes(heatmaps, activations, mode):
    """:func:`reference_box` of each of ``heatmaps`` (N, H, W) with its channel's activation map."""
    boxes = relevant_boxes(heatmaps)
    for n, (box, activation) in enumerate(zip(boxes, activations)):
        if box is None and mode == "activation" and activation.dim() == 2:
            upsampled = F.interpolate(activation[None, None].float(), size=tuple(heatmaps.shape[1:]), mode="bilinear")
            boxes[n] = relevant_box(upsampled[0, 0])
    return boxes


def _extent(low, high, least, limit):
    """``[low, high)`` grown symmetrically to at least ``least`` and shifted/clipped into ``[0, limit)``."""
    grow = max(0, least - (high - low))
    low, high = low - grow // 2, high + grow - grow // 2
    shift = max(0, -low) - max(0, high - limit)
    return max(0, low + shift), min(limit, high + shift)


def scale_box(box, source, target):
    """``box`` in an image of shape ``source`` (H, W) mapped to one of shape ``target``."""
    sy, sx = target[0] / source[0], target[1] / source[1]
    top, left, bottom, right = box
    return (int(np.floor(top * sy)), int(np.floor(left * sx)), int(np.ceil(bottom * sy)), int(np.ceil(right * sx)))


def crop(image, box):
    """The part of ``image`` (H, W, 3) inside ``box``."""
    top, left, bottom, right = box
    return image[top:bottom, left:right].copy()


def highlight(image, box, dim=0.35):
    """``image`` (uint8 H, W, 3) with everything outside ``box`` darkened to ``dim`` of its brightness."""
    top, left, bottom, right = box
    out = (image.astype(np.float32) * dim).round().astype(np.uint8)
    out[top:bottom, left:right] = image[top:bottom, left:right]
    return out
