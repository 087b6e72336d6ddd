"""Helpers shared by the evaluation modules: batched scoring, input checks, figures."""
import numpy as np
import torch

from ..engine.targets import Contrast, resolve_targets


def per_channel(values):
    """(B, C, ...) → (B, C): summed over positions (a channel's total relevance or activation)."""
    return values.flatten(2).sum(2) if values.dim() > 2 else values


def channel_mask_hook(keep, fill):
    """A forward hook that keeps the channels where ``keep()`` (N, C) is True and sets the others to ``fill``
    (a number or a tensor broadcastable to the output); ``keep`` is called on every forward pass."""
    def hook(module, inputs, output):
        mask = keep().to(output.device)
        mask = mask.view(*mask.shape, *(1,) * (output.dim() - 2))
        return torch.where(mask, output, torch.as_tensor(fill, dtype=output.dtype, device=output.device))
    return hook


def as_images(images, model):
    """``images`` as a float batch (B, C, H, W) on the model's device."""
    images = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError("expected float images (a torch.Tensor or numpy array, normalised as the model expects)")
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    parameter = next(model.parameters())
    return images.to(device=parameter.device, dtype=parameter.dtype)


def as_heatmaps(heatmaps, images):
    """``heatmaps`` as a float tensor (B, H, W) matching ``images`` (B, C, H, W)."""
    heatmaps = torch.as_tensor(np.asarray(heatmaps) if not isinstance(heatmaps, torch.Tensor) else heatmaps)
    if heatmaps.dim() == 2:
        heatmaps = heatmaps[None]
    if heatmaps.dim() == 4 and heatmaps.shape[1] == 1:
        heatmaps = heatmaps[:, 0]
    want = (images.shape[0], *images.shape[2:])
    if tuple(heatmaps.shape) != want:
        raise ValueError(f"expected one heatmap (H, W) per image, shape {want}, got {tuple(heatmaps.shape)}; "
                         "sum channel-wise attributions over the channels first (attribution.sum(1))")
    heatmaps = heatmaps.to(device=images.device, dtype=torch.float64)
    if not torch.isfinite(heatmaps).all():
        raise ValueError("heatmaps contain NaN or infinite values; an ordering of pixels by them would be meaningless")
    return heatmaps


def targets_of(model, images, targets, batch_size):
    """One class index per image: the model's prediction where ``targets`` is None."""
    if targets is None:
        return scores(model, images, None, "logit", batch_size)[1]
    with torch.no_grad():
        classes = model(images[:1]).shape[1]
    targets = resolve_targets(targets, torch.empty(len(images), classes))
    if any(isinstance(t, Contrast) for t in targets):
        raise ValueError("perturbation scores one class at a time; give class indices, not contrasts")
    return torch.tensor(targets, device=images.device)


@torch.no_grad()
def scores(model, inputs, targets, score, batch_size):
    """Forward ``inputs`` in batches of ``batch_size``; return the ``targets``' scores (logit or softmax probability)
    and the predicted classes. ``targets`` is one index per input or None (the predicted class)."""
    if score not in ("logit", "probability"):
        raise ValueError(f"score must be 'logit' or 'probability', got {score!r}")
    values, predictions = [], []
    for start in range(0, len(inputs), batch_size):
        logits = model(inputs[start:start + batch_size])
        if not torch.isfinite(logits).all():
            raise FloatingPointError(f"{type(model).__name__} returned non-finite logits on perturbed inputs")
        output = logits.softmax(1) if score == "probability" else logits
        predicted = logits.argmax(1)
        chosen = predicted if targets is None else targets[start:start + batch_size]
        values.append(output.gather(1, chosen[:, None])[:, 0])
        predictions.append(predicted)
    return torch.cat(values), torch.cat(predictions)


def check_batch_size(batch_size):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def new_axes(ax, ncols=1, width=4.0, height=3.2):
    """``ax`` and its figure, or a new figure with ``ncols`` axes side by side."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    figure, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, layout="constrained")
    return figure, axes[0] if ncols > 1 else axes[0, 0]


def mean_band(ax, x, values, label, **style):
    """Plot the mean of ``values`` (N, len(x)) over N with a band of one standard error."""
    values = np.asarray(values, dtype=float)
    mean = values.mean(0)
    error = values.std(0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros_like(mean)
    (line,) = ax.plot(x, mean, label=label, **style)
    ax.fill_between(x, mean - error, mean + error, color=line.get_color(), alpha=0.2, linewidth=0)
    return line
