"""Sanity checks for explanation methods (Adebayo et al. 2018): does the heatmap change when the model does?

- **Cascading randomisation**: re-initialise the layers from the top (output) down, one more at each step, and compare
  each step's heatmap with the original one. A method that explains the model loses similarity quickly; one that
  shows the input (an edge detector) stays similar — it fails the check.
- **Independent randomisation**: re-initialise one layer at a time, the others trained.
- **Random logit**: explain a random other class; a class-sensitive method gives a different heatmap.

Similarities per image: Spearman rank correlation of the signed and of the absolute heatmaps, SSIM of the absolute
heatmaps scaled to [0, 1] by their maximum (Gaussian window, sigma 1.5 px), and the share of the top 10 % pixels by
absolute value that both heatmaps share. Layers are re-initialised with their own ``reset_parameters`` on a private
copy of the model (seeded); the user's model is never changed.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..models import check_layer
from ..models import layers as concept_layers
from ..models.private import private_copy
from ._common import as_images, new_axes, targets_of

METRICS = ("spearman", "spearman_abs", "ssim", "top_k")


def lrp(model, images, targets):
    """LRP heatmaps of the Explainer's default composite."""
    from ..engine import Explainer

    return Explainer(model).heatmap(images, targets.tolist())


def gradient(model, images, targets):
    """The gradient of the target logit with respect to the input, summed over colour channels."""
    return _input_gradient(model, images, targets).sum(1)


def gradient_x_input(model, images, targets):
    """Gradient times input, summed over colour channels."""
    return (_input_gradient(model, images, targets) * images).sum(1)


def _input_gradient(model, images, targets):
    images = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        model(images).gather(1, targets[:, None]).sum().backward()
    return images.grad


def edge(model, images, targets):
    """Sobel edge magnitude of the input, which ignores the model: the control that must fail the checks."""
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=images.dtype, device=images.device)
    gray = images.mean(1, keepdim=True)
    dx = F.conv2d(gray, sobel.view(1, 1, 3, 3), padding=1)
    dy = F.conv2d(gray, sobel.t().reshape(1, 1, 3, 3), padding=1)
    return (dx ** 2 + dy ** 2).sqrt()[:, 0]


METHODS = {"lrp": lrp, "gradient": gradient, "gradient_x_input": gradient_x_input, "edge": edge}


@dataclass(frozen=True)
class RandomisationResult:
    """Heatmaps (steps, B, H, W) and similarities ``{metric: (steps, B)}`` to step 0 (the trained model).

    ``steps[0]`` is "original"; step i names the layer randomised (cascading: it and every layer above it)."""
    mode: str
    method: str
    steps: list
    heatmaps: np.ndarray
    similarity: dict
    settings: dict = field(default_factory=dict)

    def table(self):
        """One row per step: the layer and the mean of each similarity over the images."""
        return [{"step": step, **{metric: float(values[i].mean()) for metric, values in self.similarity.items()}}
                for i, step in enumerate(self.steps)]

    def figure(self, ax=None):
        """Mean similarity to the original heatmap per step, one line per metric."""
        figure, ax = new_axes(ax, width=5.5)
        x = np.arange(len(self.steps))
        for metric, values in self.similarity.items():
            ax.plot(x, values.mean(1), marker="o", markersize=3, label=metric)
        ax.set_xticks(x, self.steps, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("similarity to the original heatmap")
        ax.set_title(f"{self.method}: {self.mode} randomisation", fontsize=9)
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.legend(fontsize=7)
        return figure

    def strip(self, images=3):
        """The classic strip: one row per image, its heatmap after each step (red positive, blue negative)."""
        import matplotlib.pyplot as plt

        rows = min(images, self.heatmaps.shape[1])
        figure, axes = plt.subplots(rows, len(self.steps), figsize=(1.1 * len(self.steps), 1.2 * rows + 0.6),
                                    squeeze=False)
        for row in range(rows):
            for column, step in enumerate(self.steps):
                heatmap = self.heatmaps[column, row]
                scale = np.abs(heatmap).max() or 1.0
                axes[row, column].imshow(heatmap, cmap="bwr", vmin=-scale, vmax=scale)
                axes[row, column].set_axis_off()
                if row == 0:
                    axes[row, column].set_title(step, fontsize=6, rotation=45, ha="left")
        figure.suptitle(f"{self.method}, {self.mode} randomisation", fontsize=9)
        return figure


def randomisation_check(model, images, method="lrp", targets=None, *, mode="cascading", layers=None, seed=0,
                        top_k=0.1, progress=True):
    """Model-parameter randomisation test: :class:`RandomisationResult`.

    ``method`` is a name in :data:`METHODS` or a callable ``(model, images, targets) -> (B, H, W)``; ``targets``
    default to the trained model's predictions and stay fixed. ``layers`` (default every convolution and linear
    layer) are randomised from the last to the first (``mode="cascading"``) or one at a time
    (``mode="independent"``).
    """
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode must be 'cascading' or 'independent', got {mode!r}")
    name, explain = _method(method)
    trained = private_copy(model)
    images = as_images(images, trained)
    targets = targets_of(trained, images, targets, 256)
    layers = list(concept_layers(model)) if layers is None else list(layers)
    for layer in layers:
        _check_randomisable(check_layer(model, layer), layer)
    order = layers[::-1]
    original = _explain(explain, trained, images, targets)
    heatmaps = [original]
    randomised = private_copy(model)
    for index, layer in enumerate(tqdm(order, desc=f"{mode} randomisation", disable=not progress)):
        if mode == "independent":
            randomised = private_copy(model)
        _randomise(dict(randomised.named_modules())[layer], seed + index)
        heatmaps.append(_explain(explain, randomised, images, targets))
    heatmaps = torch.stack(heatmaps)
    similarity = {metric: torch.stack([similarities(original, h, top_k)[metric] for h in heatmaps]).numpy()
                  for metric in METRICS}
    return RandomisationResult(mode, name, ["original", *order], heatmaps.cpu().numpy(), similarity,
                               dict(seed=seed, top_k=top_k))


@dataclass(frozen=True)
class RandomLogitResult:
    """Heatmaps of the target and of a random other class (B, H, W each), and their similarities ``{metric: (B,)}``."""
    method: str
    targets: np.ndarray
    others: np.ndarray
    heatmaps: np.ndarray
    other_heatmaps: np.ndarray
    similarity: dict


def random_logit_check(model, images, method="lrp", targets=None, *, seed=0, top_k=0.1):
    """Explain each image for its target and for a random other class (seeded, without touching global random state):
    a class-sensitive method gives dissimilar heatmaps. Returns :class:`RandomLogitResult`."""
    name, explain = _method(method)
    copy = private_copy(model)
    images = as_images(images, copy)
    targets = targets_of(copy, images, targets, 256)
    with torch.no_grad():
        classes = copy(images[:1]).shape[1]
    if classes < 2:
        raise ValueError("the random-logit check needs a model with at least two classes")
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, classes, (len(images),), generator=generator).to(targets.device)
    others = (targets + shift) % classes
    first, second = _explain(explain, copy, images, targets), _explain(explain, copy, images, others)
    scores = similarities(first, second, top_k)
    return RandomLogitResult(name, targets.cpu().numpy(), others.cpu().numpy(), first.cpu().numpy(),
                             second.cpu().numpy(), {metric: values.numpy() for metric, values in scores.items()})


def similarities(first, second, top_k=0.1):
    """``{metric: (B,)}`` similarities between two batches of heatmaps (B, H, W), as described in the module."""
    first, second = first.double(), second.double()
    flat_first, flat_second = first.flatten(1), second.flatten(1)
    k = max(1, int(top_k * flat_first.shape[1]))
    top_first = flat_first.abs().topk(k, dim=1).indices
    top_second = flat_second.abs().topk(k, dim=1).indices
    shared = torch.tensor([len(np.intersect1d(a.numpy(), b.numpy())) / k
                           for a, b in zip(top_first.cpu(), top_second.cpu())], dtype=torch.float64)
    return {
        "spearman": _pearson(_ranks(flat_first), _ranks(flat_second)),
        "spearman_abs": _pearson(_ranks(flat_first.abs()), _ranks(flat_second.abs())),
        "ssim": ssim(_unit(first.abs()), _unit(second.abs())),
        "top_k": shared,
    }


def ssim(first, second, sigma=1.5, data_range=1.0):
    """Mean structural similarity of two batches of images (B, H, W) with a Gaussian window (Wang et al. 2004)."""
    radius = int(3.5 * sigma + 0.5)
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=first.dtype) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(first.device)
    window = (kernel[:, None] * kernel[None]).view(1, 1, 2 * radius + 1, 2 * radius + 1)

    def blur(x):
        return F.conv2d(x[:, None], window)[:, 0]

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu1, mu2 = blur(first), blur(second)
    var1, var2 = blur(first * first) - mu1 ** 2, blur(second * second) - mu2 ** 2
    covariance = blur(first * second) - mu1 * mu2
    values = ((2 * mu1 * mu2 + c1) * (2 * covariance + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (var1 + var2 + c2))
    return values.flatten(1).mean(1)


def _unit(values):
    """(B, H, W) scaled to a maximum of 1 per heatmap."""
    return values / values.flatten(1).amax(1).clamp_min(1e-30)[:, None, None]


def _ranks(values):
    return values.argsort(1).argsort(1).double()


def _pearson(a, b):
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)


def _method(method):
    if callable(method):
        return getattr(method, "__name__", "method"), method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(map(repr, METHODS))} or a callable "
                         "(model, images, targets) -> heatmaps (B, H, W)")
    return method, METHODS[method]


def _explain(explain, model, images, targets):
    heatmaps = torch.as_tensor(explain(model, images, targets)).detach()
    if tuple(heatmaps.shape) != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"the method returned heatmaps of shape {tuple(heatmaps.shape)}; expected (B, H, W) = "
                         f"{(images.shape[0], *images.shape[2:])}")
    if not torch.isfinite(heatmaps).all():
        raise FloatingPointError("the method returned non-finite heatmaps for the (randomised) model")
    return heatmaps.double().cpu()


def _check_randomisable(module, layer):
    if not any(True for _ in module.parameters(recurse=False)) or not hasattr(module, "reset_parameters"):
        raise ValueError(f"layer {layer!r} ({type(module).__name__}) cannot be randomised: it has no parameters of "
                         "its own with a reset_parameters() method; name convolution, linear or normalisation layers")


def _randomise(module, seed):
    """Re-initialise ``module``'s parameters with its own initialiser, seeded, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module.reset_parameters()
