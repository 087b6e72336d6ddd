"""Pixel-level faithfulness of heatmaps: pixel flipping / region perturbation (MoRF, LeRF, AOPC) and insertion /
deletion curves (AUC).

Choices, documented once here:

- **Patches.** The image is cut into a grid of ``patch_size`` x ``patch_size`` patches (``patch_size=1``: pixels);
  a patch's score is the sum of the heatmap inside it (Samek et al. 2017). All colour channels of a patch are
  perturbed together.
- **Order.** ``"morf"`` removes the most relevant patches first, ``"lerf"`` the least relevant first; ties keep the
  patches' row-major order.
- **Steps.** ``steps`` perturbation steps; after step k the first ``round(k * P / steps)`` patches of the order are
  changed (P patches in all), so ``steps=P`` changes one patch per step. The curve has ``steps + 1`` points (k = 0 is
  the unchanged image for deletion, the baseline image for insertion).
- **Baselines** (what a removed pixel becomes, in the model's input space): ``"mean"`` the image's per-channel mean,
  ``"zero"`` or any number (0 is the dataset mean for standardised inputs), ``"blur"`` a Gaussian blur of the image
  (``sigma`` px; the insertion baseline of Petsiuk et al. 2018), ``"noise"`` Gaussian noise with the image's
  per-channel mean and std (seeded), ``"linear"`` ROAD's inpainting-free linear imputation without noise (Rong et al.
  2022: each removed pixel is the weighted mean of its 8 neighbours, 1/6 for direct and 1/12 for diagonal ones,
  solved exactly as a sparse linear system per step), or a tensor (C, H, W) / (B, C, H, W).
- **Score.** The target's logit (default) or its softmax probability.

Every perturbation step of every image is one input of a batched forward pass (``batch_size`` inputs at a time) on a
private copy of the model, so the user's model is never run or changed.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..models.private import private_copy
from ._common import as_heatmaps, as_images, check_batch_size, mean_band, new_axes, scores, targets_of

ORDERS = ("morf", "lerf")
BASELINES = ("mean", "zero", "blur", "noise", "linear")
#: ROAD's neighbour weights: direct neighbours 1/6, diagonal ones 1/12
_ROAD_WEIGHTS = [((dy, dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
                 for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


@dataclass(frozen=True)
class PerturbationCurves:
    """Scores of perturbed images: ``scores`` (B, steps + 1) at ``fractions`` (steps + 1,) of the patches changed.

    ``kind`` is ``"deletion"`` (patches replaced by the baseline in ``order``) or ``"insertion"`` (patches of the
    image inserted into the baseline in ``order``); ``targets`` are the explained classes.
    """
    kind: str
    order: str
    fractions: np.ndarray
    scores: np.ndarray
    targets: np.ndarray
    settings: dict = field(default_factory=dict)

    @property
    def aopc(self):
        """Area over the perturbation curve per image (Samek et al. 2017): the mean over the ``steps + 1`` points of
        ``score(0) - score(k)``. High for MoRF deletion of a faithful heatmap, low (or negative) for LeRF."""
        return (self.scores[:, :1] - self.scores).mean(1)

    @property
    def auc(self):
        """Area under the curve per image over the fraction of patches changed (trapezoidal rule; Petsiuk et al.
        2018): low for deletion and high for insertion when the heatmap is faithful."""
        return np.trapezoid(self.scores, self.fractions, axis=1)

    def figure(self, ax=None, label=None):
        """Mean curve over the images with a band of one standard error (matplotlib figure)."""
        figure, ax = new_axes(ax)
        mean_band(ax, self.fractions, self.scores, label or f"{self.kind} {self.order.upper()}")
        ax.set_xlabel(f"fraction of {'pixels' if self.settings.get('patch_size') == 1 else 'patches'} "
                      f"{'removed' if self.kind == 'deletion' else 'inserted'}")
        ax.set_ylabel(f"target {self.settings.get('score', 'logit')}")
        ax.set_title(f"{self.kind} ({self.settings.get('baseline')} baseline), AOPC {self.aopc.mean():.3g}, "
                     f"AUC {self.auc.mean():.3g}", fontsize=9)
        ax.legend(fontsize=8)
        return figure


def pixel_flipping(model, images, heatmaps, targets=None, *, order="morf", patch_size=1, steps=None, baseline="mean",
                   score="logit", batch_size=256, sigma=5.0, seed=0, progress=True):
    """Pixel flipping (``patch_size=1``) or region perturbation: replace the patches of each image by the baseline in
    MoRF or LeRF order of ``heatmaps`` (B, H, W) and record the target score. Returns :class:`PerturbationCurves`
    (``.aopc``, ``.auc``, ``.figure()``). ``targets``: a class per image, or None for the model's predictions."""
    return perturbation_curves(model, images, heatmaps, targets, kind="deletion", order=order, patch_size=patch_size,
                               steps=steps, baseline=baseline, score=score, batch_size=batch_size, sigma=sigma,
                               seed=seed, progress=progress)


def insertion_deletion(model, images, heatmaps, targets=None, *, patch_size=1, steps=None, baseline="blur",
                       score="probability", batch_size=256, sigma=5.0, seed=0, progress=True):
    """Insertion and deletion curves (Petsiuk et al. 2018), most relevant patches first: ``(insertion, deletion)``
    :class:`PerturbationCurves`, compared by their ``.auc`` (insertion high, deletion low for a faithful heatmap)."""
    settings = dict(order="morf", patch_size=patch_size, steps=steps, baseline=baseline, score=score,
                    batch_size=batch_size, sigma=sigma, seed=seed, progress=progress)
    return tuple(perturbation_curves(model, images, heatmaps, targets, kind=kind, **settings)
                 for kind in ("insertion", "deletion"))


def perturbation_curves(model, images, heatmaps, targets=None, *, kind="deletion", order="morf", patch_size=1,
                        steps=None, baseline="mean", score="logit", batch_size=256, sigma=5.0, seed=0,
                        progress=True):
    """The one implementation behind :func:`pixel_flipping` and :func:`insertion_deletion` (arguments as there)."""
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}, got {order!r}")
    batch_size = check_batch_size(batch_size)
    model = private_copy(model)
    images = as_images(images, model)
    heatmaps = as_heatmaps(heatmaps, images)
    patch_size, steps, counts = _schedule(images.shape[2:], patch_size, steps)
    targets = targets_of(model, images, targets, batch_size)
    fills = _baseline_images(images, baseline, sigma, seed)
    ranks = _patch_ranks(heatmaps, patch_size, order)  # (B, P): position of each patch in the order
    per_chunk = max(1, batch_size // (steps + 1))
    curves = []
    for start in tqdm(range(0, len(images), per_chunk), desc=kind, unit="chunk", disable=not progress):
        chunk = slice(start, start + per_chunk)
        removed = ranks[chunk, None, :] < counts[None, :, None]  # (b, steps + 1, P)
        if kind == "insertion":
            removed = ~removed
        removed = _to_pixels(removed, patch_size, images.shape[2:])  # (b, steps + 1, H, W)
        inputs = _perturb(images[chunk], removed, fills, chunk, baseline)
        b = inputs.shape[0]
        chunk_targets = targets[chunk].repeat_interleave(steps + 1)
        values, _ = scores(model, inputs.flatten(0, 1), chunk_targets, score, batch_size)
        curves.append(values.view(b, steps + 1))
    settings = dict(patch_size=patch_size, steps=steps, baseline=baseline if isinstance(baseline, str | float | int)
                    else "tensor", score=score, sigma=sigma, seed=seed)
    return PerturbationCurves(kind, order, (counts.double() / counts[-1]).cpu().numpy(),
                              torch.cat(curves).double().cpu().numpy(), targets.cpu().numpy(), settings)


def remove_top(images, heatmaps, fraction, *, order="morf", patch_size=1, baseline="mean", sigma=5.0, seed=0):
    """One point of a deletion curve, to look at: ``images`` (B, C, H, W) with the ``fraction`` of their patches
    ranked first by ``heatmaps`` (B, H, W) in ``order`` replaced by the ``baseline`` (choices as in the module's
    docstring). Returns ``(perturbed (B, C, H, W), removed (B, H, W) bool)``."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number from 0 to 1, got {fraction!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}, got {order!r}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a float tensor (B, C, H, W)")
    heatmaps = as_heatmaps(heatmaps, images)
    patch_size, _, counts = _schedule(images.shape[2:], patch_size, 1)
    count = round(float(fraction) * int(counts[-1]))
    removed = _patch_ranks(heatmaps, patch_size, order) < count  # (B, P)
    removed = _to_pixels(removed[:, None], patch_size, images.shape[2:])  # (B, 1, H, W)
    fills = _baseline_images(images, baseline, sigma, seed)
    return _perturb(images, removed, fills, slice(None), baseline)[:, 0], removed[:, 0]


def _schedule(size, patch_size, steps):
    """Check ``patch_size`` and ``steps`` against the image ``size`` (H, W); return them and the number of patches
    changed after each step (steps + 1,)."""
    height, width = size
    if not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer, got {patch_size!r}")
    if height % patch_size or width % patch_size:
        raise ValueError(f"patch_size {patch_size} does not tile the {height}x{width} image; use a divisor of both "
                         f"sides (e.g. {', '.join(str(d) for d in _common_divisors(height, width)[:6])})")
    patches = (height // patch_size) * (width // patch_size)
    steps = min(patches, 64) if steps is None else steps
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= patches:
        raise ValueError(f"steps must be an integer from 1 to the number of patches ({patches} patches of "
                         f"{patch_size}x{patch_size} px in a {height}x{width} image), got {steps!r}")
    counts = torch.round(torch.arange(steps + 1, dtype=torch.float64) * patches / steps).long()
    return int(patch_size), int(steps), counts


def _common_divisors(a, b):
    return [d for d in range(1, min(a, b) + 1) if a % d == 0 and b % d == 0]


def _patch_ranks(heatmaps, patch_size, order):
    """Each patch's position (0 = changed first) in the order of its summed relevance, ties in row-major order."""
    patch_sums = F.avg_pool2d(heatmaps[:, None], patch_size).flatten(1) * patch_size ** 2
    ordering = torch.sort(patch_sums, dim=1, descending=order == "morf", stable=True).indices
    ranks = torch.empty_like(ordering)
    ranks.scatter_(1, ordering, torch.arange(ordering.shape[1], device=ordering.device).expand_as(ordering))
    return ranks.to(heatmaps.device)


def _to_pixels(patch_mask, patch_size, size):
    """(b, n, P) patch mask → (b, n, H, W) pixel mask."""
    b, n, _ = patch_mask.shape
    grid = patch_mask.view(b, n, size[0] // patch_size, size[1] // patch_size)
    return grid.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)


def _baseline_images(images, baseline, sigma, seed):
    """What removed pixels become, as images (B, C, H, W) — or None for ``"linear"``, which depends on the mask."""
    if isinstance(baseline, torch.Tensor | np.ndarray):
        fill = torch.as_tensor(baseline).to(images)
        if fill.dim() == 3:
            fill = fill[None]
        if fill.dim() != 4 or fill.shape[1:] != images.shape[1:] or fill.shape[0] not in (1, len(images)):
            raise ValueError(f"a baseline tensor must have shape (C, H, W) or (B, C, H, W) like the images "
                             f"{tuple(images.shape)}, got {tuple(fill.shape)}")
        return fill.expand_as(images)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(images, float(baseline))
    if baseline == "zero":
        return torch.zeros_like(images)
    if baseline == "mean":
        return images.mean((2, 3), keepdim=True).expand_as(images)
    if baseline == "blur":
        radius = max(1, int(3 * sigma))
        kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=images.dtype) / sigma) ** 2)
        kernel = (kernel / kernel.sum()).to(images.device)
        return _separable_blur(images, kernel)
    if baseline == "noise":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(images.shape, generator=generator, dtype=images.dtype).to(images.device)
        return images.mean((2, 3), keepdim=True) + noise * images.std((2, 3), keepdim=True)
    if baseline == "linear":
        return None
    raise ValueError(f"unknown baseline {baseline!r}; use one of {', '.join(map(repr, BASELINES))}, a number or a "
                     "tensor shaped like the images")


def _separable_blur(images, kernel):
    """Gaussian blur with reflected borders, channel by channel."""
    channels, radius = images.shape[1], len(kernel) // 2
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect" if radius < min(images.shape[2:])
                   else "replicate")
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(padded, horizontal, groups=channels), vertical, groups=channels)


def _perturb(images, removed, fills, chunk, baseline):
    """Perturbed inputs (b, n, C, H, W): the images with the ``removed`` pixels (b, n, H, W) replaced."""
    originals = images[:, None].expand(-1, removed.shape[1], -1, -1, -1)
    mask = removed[:, :, None]
    if fills is None:  # "linear": imputed from the pixels that remain, per step
        return linear_imputation(originals.flatten(0, 1), mask.flatten(0, 1)[:, 0]).view_as(originals)
    return torch.where(mask, fills[chunk][:, None], originals)


def linear_imputation(images, removed):
    """ROAD's linear imputation (without noise) of the ``removed`` pixels (N, H, W) of ``images`` (N, C, H, W).

    Every removed pixel equals the weighted mean of its in-image 8-neighbours (direct 1/6, diagonal 1/12): one sparse
    linear system per image, shared by its channels, solved exactly (SciPy's sparse LU, as ROAD does). The system is
    non-singular whenever some pixel remains; an image with every pixel removed gets its per-channel mean.
    """
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    n, channels, height, width = images.shape
    pixels = images.detach().to("cpu", torch.float64).numpy().reshape(n, channels, height * width)
    holes = removed.detach().cpu().numpy().reshape(n, height * width)
    rows, cols = np.divmod(np.arange(height * width), width)
    result = pixels.copy()
    for i in range(n):
        unknown = np.flatnonzero(holes[i])
        if len(unknown) == 0:
            continue
        if len(unknown) == height * width:
            result[i] = pixels[i].mean(1, keepdims=True)
            continue
        index = np.full(height * width, -1)
        index[unknown] = np.arange(len(unknown))
        diagonal = np.zeros(len(unknown))
        rhs = np.zeros((len(unknown), channels))
        entries_i, entries_j, entries_w = [], [], []
        for (dy, dx), weight in _ROAD_WEIGHTS:
            y, x = rows[unknown] + dy, cols[unknown] + dx
            inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
            neighbour = y[inside] * width + x[inside]
            diagonal[inside] += weight
            other = index[neighbour]
            known = other < 0
            rows_inside = np.flatnonzero(inside)
            np.add.at(rhs, rows_inside[known], weight * pixels[i][:, neighbour[known]].T)
            entries_i.append(rows_inside[~known])
            entries_j.append(other[~known])
            entries_w.append(np.full((~known).sum(), -weight))
        entries_i.append(np.arange(len(unknown)))
        entries_j.append(np.arange(len(unknown)))
        entries_w.append(diagonal)
        matrix = csc_matrix((np.concatenate(entries_w), (np.concatenate(entries_i), np.concatenate(entries_j))),
                            shape=(len(unknown), len(unknown)))
        result[i][:, unknown] = splu(matrix).solve(rhs).T
    return torch.from_numpy(result).view(n, channels, height, width).to(images)
