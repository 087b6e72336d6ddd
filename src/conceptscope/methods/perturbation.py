"""Methods that change the input and watch the output: occlusion and LIME (computed by Captum) and RISE (written
here: Captum has none). Each returns ``(B, H, W)`` maps."""
import math

import torch
import torch.nn.functional as F
from captum.attr import Lime, Occlusion
from tqdm.auto import tqdm


def occlusion(model, images, targets, window=8, stride=4, baseline=0.0, progress=True, batch_size=64):
    """Occlusion (Zeiler & Fergus 2014): the drop of the target logit when a ``window`` x ``window`` patch is set to
    ``baseline`` (0 = the mean colour of normalised inputs), averaged over the patches covering each pixel, the patch
    moved by ``stride`` pixels."""
    channels = images.shape[1]
    found = Occlusion(model).attribute(images, sliding_window_shapes=(channels, window, window),
                                       strides=(channels, stride, stride), baselines=baseline, target=targets,
                                       perturbations_per_eval=batch_size, show_progress=progress)
    return found.mean(1)


def grid_segments(height, width, cell):
    """Superpixels for LIME: square ``cell`` x ``cell`` blocks numbered row by row, ``(H, W)`` long."""
    columns = math.ceil(width / cell)
    rows = torch.arange(height)[:, None] // cell
    return rows * columns + torch.arange(width)[None, :] // cell


def lime(model, images, targets, cell=8, samples=200, seed=0, progress=True):
    """LIME (Ribeiro et al. 2016) by Captum with its defaults (Lasso surrogate, alpha 0.01; exponential cosine
    kernel): ``samples`` random on/off patterns of ``cell`` x ``cell`` superpixels (off = 0, the mean colour), one
    image at a time; the patterns are drawn from ``seed``."""
    segments = grid_segments(*images.shape[-2:], cell).to(images.device)
    explainer, maps = Lime(model), []
    for image, target in zip(tqdm(images, desc="LIME", disable=not progress, leave=False), targets):
        with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
            torch.manual_seed(seed)
            found = explainer.attribute(image[None], target=int(target), n_samples=samples,
                                        feature_mask=segments[None, None].expand_as(image[None]), baselines=0.0)
        maps.append(found[0].mean(0))
    return torch.stack(maps)


def rise_masks(count, height, width, cells=8, keep=0.5, seed=0, device="cpu"):
    """RISE's random masks ``(count, H, W)``: ``cells`` x ``cells`` binary grids (1 with probability ``keep``),
    bilinearly upsampled to one cell more than the image and cropped at a random shift (Petsiuk et al. 2018)."""
    generator = torch.Generator().manual_seed(seed)
    cell_h, cell_w = math.ceil(height / cells), math.ceil(width / cells)
    grids = (torch.rand(count, 1, cells, cells, generator=generator) < keep).float()
    upsampled = F.interpolate(grids, size=((cells + 1) * cell_h, (cells + 1) * cell_w), mode="bilinear",
                              align_corners=False)
    dy = torch.randint(0, cell_h, (count,), generator=generator)
    dx = torch.randint(0, cell_w, (count,), generator=generator)
    rows = (dy[:, None] + torch.arange(height)[None, :])[:, :, None]
    columns = (dx[:, None] + torch.arange(width)[None, :])[:, None, :]
    return upsampled[torch.arange(count)[:, None, None], 0, rows, columns].to(device)


def rise(model, images, targets, masks=1000, cells=8, keep=0.5, seed=0, baseline=0.0, batch_size=250, progress=True):
    """RISE (Petsiuk et al. 2018): the target's softmax probability on ``masks`` randomly masked copies (masked pixels
    set to ``baseline``, 0 = the mean colour), each mask weighted by it: sum_i p_i M_i / (masks * keep). The same
    masks (from ``seed``) serve every image, so a map does not depend on the batch it came in."""
    height, width = images.shape[-2:]
    found = rise_masks(masks, height, width, cells, keep, seed, images.device).to(images.dtype)
    maps = []
    with torch.no_grad():
        for image, target in zip(tqdm(images, desc="RISE", disable=not progress, leave=False), targets):
            total = images.new_zeros(height, width)
            for part in found.split(batch_size):
                masked = image[None] * part[:, None] + baseline * (1 - part[:, None])
                probability = model(masked).softmax(1)[:, int(target)]
                total += torch.einsum("n,nhw->hw", probability, part)
            maps.append(total / (masks * keep))
    return torch.stack(maps)
