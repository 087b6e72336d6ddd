"""The reference images of many concepts at once, for embedding: which samples each concept needs, and their pictures
cut the way the lens asks for, grouped by dataset sample so each sample is explained once for all its concepts.

Crops (``crop=``):

- ``"relevance"``: the atlas' relevance-cropped references (CRP): the box holding most of the channel-conditional
  relevance of the sample for its target, as :meth:`Atlas.references` cuts it (same box, same picture). Samples are
  explained in batches (one forward pass, one backward pass to the layers), then each conditional backward pass
  serves one concept of every sample of the batch, reusing the batch's rule coefficients.
- ``"window"``: the classic receptive-field crop to compare against: a square of ``window`` x the image side, centred
  on the maximum of the channel's activation map upsampled to the input (the whole image for non-spatial layers).
- ``"none"``: whole images; each needed sample is pictured once, however many concepts share it.
"""
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..atlas import crop as cropping
from ..atlas.state import explained_for
from ..engine.explanation import pixel_relevance, relevance_from_logits
from ..engine.targets import resolve_targets

CROPS = ("relevance", "window", "none")
#: images per batched forward pass when only activations are needed (window crops)
ACTIVATION_BATCH = 32
#: samples explained together for relevance crops
RELEVANCE_BATCH = 16


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


def conditional_heatmaps(explainer, images, targets, channels):
    """CRP over a batch of samples: ``{layer: (heatmaps, activations)}``, where for each layer and sample b,
    ``heatmaps[r][b]`` is the relevance of ``images[b]`` for class ``targets[b]`` (None: the prediction) flowing
    through channel ``channels[layer][b][r]`` and ``activations[b]`` is the sample's activation (channels, ...).
    One forward pass and one backward pass to the layers for the batch; then one conditional backward pass per round
    r, each conditioning every sample on its r-th channel (rows without one stay zero), all reusing the rule
    coefficients the first pass through each module stored in the trace. This is
    :meth:`Explanation.conditional_heatmaps` batched over samples as well as over channels."""
    with explainer.lock:
        model, _, logits, trace = explainer._run(images, list(channels))
        nodes = {layer: model.node(layer) for layer in channels}
        found = relevance_from_logits(model, trace, logits, resolve_targets(targets, logits), nodes.values(),
                                      to_input=False)
        result = {}
        for layer, per_sample in channels.items():
            relevance = model.concept_view(layer, found[nodes[layer]])
            output = model.concept_view(layer, trace.values[nodes[layer]])
            rounds = []
            for r in range(max(map(len, per_sample), default=0)):
                masks = torch.zeros_like(relevance)
                for b, ids in enumerate(per_sample):
                    if r < len(ids):
                        masks[b] = explainer.concept.masks(output[b:b + 1], [ids[r]])[0, 0]
                grad = model.native_view(layer, masks * relevance)
                rounds.append(pixel_relevance(model.propagate(trace, nodes[layer], grad)[model.input_node]).cpu())
            result[layer] = (rounds, output.detach().cpu())
        return result


def _relevance_crops(atlas, needed, mode):
    """Relevance crops of batches of ``RELEVANCE_BATCH`` samples (:func:`conditional_heatmaps`), samples of similar
    concept counts batched together (fewer empty rows); the picture is the atlas' own (:meth:`Atlas.sample`) and the
    box :func:`~conceptscope.atlas.crop.reference_box`'s (found for a round's samples at once), so crops equal
    :meth:`Atlas.references`."""
    order = sorted(needed, key=lambda index: (-sum(map(len, needed[index].values())), index))
    for start in range(0, len(order), RELEVANCE_BATCH):
        samples = [atlas.sample(index) for index in order[start:start + RELEVANCE_BATCH]]
        layers = list(dict.fromkeys(layer for sample in samples for layer in needed[sample.index]))
        channels = {layer: [[channel for channel, _ in needed[sample.index].get(layer, ())] for sample in samples]
                    for layer in layers}
        targets = explained_for(atlas.target, [sample.label for sample in samples])
        found = conditional_heatmaps(atlas.explainer, torch.stack([sample.image for sample in samples]), targets,
                                     channels)
        for layer, (rounds, activations) in found.items():
            slots = [needed[sample.index].get(layer, ()) for sample in samples]
            boxes = {}  # (round, row): crop box, each round's boxes found at once
            for r, heatmaps in enumerate(rounds):
                rows = [b for b in range(len(samples)) if r < len(slots[b])]
                found_boxes = cropping.reference_boxes(heatmaps[rows], [activations[b][slots[b][r][0]] for b in rows],
                                                       mode)
                boxes.update({(r, b): box for b, box in zip(rows, found_boxes)})
            for b, sample in enumerate(samples):
                for r, (channel, slot) in enumerate(slots[b]):
                    yield _cut(sample.picture, boxes[r, b], rounds[r].shape[1:]), [(layer, channel, slot)]


def _window_crops(atlas, needed, window):
    """Activations of batches of samples (a forward pass each), windows around each channel's maximum."""
    layers = list(dict.fromkeys(layer for by_layer in needed.values() for layer in by_layer))
    indices = list(needed)
    for start in range(0, len(indices), ACTIVATION_BATCH):
        batch = [atlas.sample(index) for index in indices[start:start + ACTIVATION_BATCH]]
        _, activations = atlas.explainer.forward(torch.stack([sample.image for sample in batch]), layers)
        for row, sample in enumerate(batch):
            shape = sample.image.shape[-2:]
            for layer, slots in needed[sample.index].items():
                maps = activations[layer][row].detach().cpu()
                for channel, slot in slots:
                    box = window_box(maps[channel], shape, window)
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
