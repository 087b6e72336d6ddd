"""The reference images of many concepts at once, for embedding: which samples each concept needs, and their pictures
cut the way the lens asks for, grouped by dataset sample so each sample is explained once for all its concepts.

Crops (``crop=``):

- ``"relevance"``: the atlas' relevance-cropped references (CRP): the box holding most of the channel-conditional
  relevance of the sample for its target, as :meth:`Atlas.references` cuts it (same box, same picture). Each sample
  is explained once, and one batched backward pass per layer serves all the concepts it is a reference of.
- ``"window"``: the classic receptive-field crop to compare against: a square of ``window`` x the image side, centred
  on the maximum of the channel's activation map upsampled to the input (the whole image for non-spatial layers).
- ``"none"``: whole images; each needed sample is pictured once, however many concepts share it.
"""
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..atlas import crop as cropping
from ..atlas.state import explained_for

CROPS = ("relevance", "window", "none")
#: images per batched forward pass when only activations are needed (window crops)
ACTIVATION_BATCH = 32


def reference_table(atlas, layers, n, mode):
    """``{layer: (C, n) int64}`` dataset indices of each concept's top-``n`` references (-1 where it has fewer, e.g.
    a channel that never fires: the atlas drops those empty slots)."""
    table = {}
    for layer in layers:
        indices = torch.full((atlas.layers[layer], n), -1, dtype=torch.int64)
        for channel in range(atlas.layers[layer]):
            found = torch.from_numpy(atlas.top(layer, channel, mode, n)[0])
            indices[channel, :len(found)] = found
        table[layer] = indices
    return table


def _by_sample(table):
    """``{sample: {layer: [(channel, slot), ...]}}`` of every valid slot of ``table``, samples in ascending order."""
    needed = {}
    for layer, indices in table.items():
        for channel, slot in torch.nonzero(indices >= 0).tolist():
            needed.setdefault(int(indices[channel, slot]), {}).setdefault(layer, []).append((channel, slot))
    return dict(sorted(needed.items()))


def window_box(activation, shape, window):
    """A square of ``window`` x the shorter side of an input of ``shape`` (H, W), centred on the maximum of the
    channel's ``activation`` map upsampled to the input and shifted to lie inside it; None for non-spatial layers."""
    if activation.dim() != 2:
        return None
    height, width = shape
    upsampled = F.interpolate(activation[None, None].float(), size=(height, width), mode="bilinear")[0, 0]
    row, col = divmod(int(upsampled.argmax()), width)
    side = max(1, round(window * min(height, width)))
    top, left = min(max(row - side // 2, 0), height - side), min(max(col - side // 2, 0), width - side)
    return top, left, top + side, left + side


def _cut(picture, box, source):
    """``picture`` cut to ``box`` (given in an image of shape ``source``); the whole picture for no box."""
    return picture if box is None else cropping.crop(picture, cropping.scale_box(box, source, picture.shape[:2]))


def _relevance_crops(atlas, needed, mode):
    """Relevance crops as :meth:`Atlas.references` cuts them (same heatmap, box and picture), each sample explained
    once for all the concepts it serves: one forward pass, then per layer one backward pass for all its channels at
    once (:meth:`Explanation.conditional_heatmaps`: the one-image trace's rule coefficients broadcast over every row,
    none of them empty), and the boxes of those channels found together."""
    for index, by_layer in needed.items():
        sample = atlas.sample(index)
        explanation = atlas.explainer.explain(sample.image, explained_for(atlas.target, [sample.label]),
                                              list(by_layer))
        for layer, slots in by_layer.items():
            channels = [channel for channel, _ in slots]
            heatmaps = explanation.conditional_heatmaps(layer, channels).cpu()
            activations = atlas.explainer.activation_maps(layer, explanation.activations[layer][None],
                                                          heatmaps.shape[1:])[0]
            boxes = cropping.reference_boxes(heatmaps, [activations[channel].cpu() for channel in channels], mode)
            for (channel, slot), box in zip(slots, boxes):
                yield _cut(sample.picture, box, heatmaps.shape[1:]), [(layer, channel, slot)]


def _window_crops(atlas, needed, window):
    """Activations of batches of samples (a forward pass each), windows around each channel's maximum."""
    layers = list(dict.fromkeys(layer for by_layer in needed.values() for layer in by_layer))
    indices = list(needed)
    for start in range(0, len(indices), ACTIVATION_BATCH):
        batch = [atlas.sample(index) for index in indices[start:start + ACTIVATION_BATCH]]
        images = torch.stack([sample.image for sample in batch])
        shape = images.shape[-2:]
        _, activations = atlas.explainer.forward(images, layers)
        maps = {layer: atlas.explainer.activation_maps(layer, found, shape).detach().cpu()
                for layer, found in activations.items()}
        for row, sample in enumerate(batch):
            for layer, slots in needed[sample.index].items():
                for channel, slot in slots:
                    box = window_box(maps[layer][row, channel], shape, window)
                    yield _cut(sample.picture, box, shape), [(layer, channel, slot)]


def _whole_images(atlas, needed):
    """Each needed sample's picture once, with every slot it fills."""
    for index, layers in needed.items():
        yield atlas.sample(index).picture, [(layer, channel, slot) for layer, slots in layers.items()
                                             for channel, slot in slots]


def reference_images(atlas, table, mode, crop, window=0.5, progress=True):
    """Yield ``(image uint8 H x W x 3, [(layer, channel, slot), ...])`` for every valid slot of ``table`` (see
    :func:`reference_table`): the picture of that reference cut by ``crop`` (one of :data:`CROPS`), and the slots it
    fills (several for ``crop="none"``, where a sample is pictured once)."""
    if atlas.dataset is None:
        raise ValueError("embedding references needs the dataset the atlas was built on, for the images: "
                         "Atlas.load(path, explainer, dataset=...)")
    needed = _by_sample(table)
    if crop == "relevance":
        found = _relevance_crops(atlas, needed, mode)
    elif crop == "window":
        found = _window_crops(atlas, needed, window)
    else:
        found = _whole_images(atlas, needed)
    total = sum(len(slots) for layers in needed.values() for slots in layers.values())
    with tqdm(total=total, unit="ref", desc="references", disable=not progress) as bar:
        for image, slots in found:
            yield image, slots
            bar.update(len(slots))
