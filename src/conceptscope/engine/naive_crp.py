"""The straightforward CRP computation with zennit's own hooks: one full forward and backward pass per batch of
conditions, the scheme of the reference implementation (zennit-crp, ``exclude_parallel=True``). Slow; the engine is
tested and benchmarked against it."""
import torch


def naive_conditional_heatmaps(model, composite, image, layer, channels, target, batch_size=8):
    """Heatmaps (K, H, W) for ``channels`` of ``layer``, each from a full zennit forward+backward pass on ``model``.

    The input is repeated once per condition in a batch of up to ``batch_size``; the relevance at ``layer``'s output
    is computed, masked to one channel per batch entry and propagated to the input (relevance bypassing the layer is
    excluded). ``model`` is left as it was: zennit removes its hooks and canonizers on leaving the context.
    """
    module = dict(model.named_modules())[layer]
    heatmaps = []
    for start in range(0, len(channels), batch_size):
        ids = torch.as_tensor(channels[start:start + batch_size])
        recorded = {}
        handle = module.register_forward_hook(lambda m, a, out, recorded=recorded: recorded.setdefault("out", out))
        try:
            with composite.context(model) as modified:
                batch = image[None].repeat(len(ids), *([1] * image.dim())).requires_grad_()
                logits = modified(batch)
                initial = torch.zeros_like(logits)
                initial[:, target] = logits[:, target].detach()
                (relevance,) = torch.autograd.grad(logits, recorded["out"], initial, retain_graph=True)
                mask = torch.zeros_like(relevance)
                mask[torch.arange(len(ids)), ids] = 1
                (grad,) = torch.autograd.grad(recorded["out"], batch, relevance * mask)
        finally:
            handle.remove()
        heatmaps.append(grad.sum(1).detach())
    return torch.cat(heatmaps)
