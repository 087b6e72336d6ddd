"""Random-weight networks made fit for checking explanations: no additive constants, BatchNorm calibrated on noise."""
import torch

CONSTANT_NAMES = ("class_token", "class_embedding", "cls_token", "pos_embed", "positional_embedding", "pos_embedding")


@torch.no_grad()
def without_constants(model, image_size, seed=0):
    """Remove every additive constant of ``model`` (biases, BatchNorm means, class tokens, position embeddings) and
    calibrate its BatchNorms on a noise batch, in place; returns the model, in eval mode.

    With no additive constant, LRP with conserving rules must give a heatmap that sums to the target logit — the
    check that catches rules which create or lose relevance. Each BatchNorm divides by the root mean square of its
    input on the noise (without centring, which would add a constant), so that random networks neither explode nor
    die. Linear layers initialised to zero (torchvision's ViT heads) are re-drawn, else every logit is 0.
    """
    torch.manual_seed(seed)
    model.eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.any():
            torch.nn.init.normal_(module.weight, std=0.02)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        last = name.rsplit(".", 1)[-1]
        if last in ("bias", "running_mean") or any(key in last for key in CONSTANT_NAMES):
            tensor.zero_()

    def calibrate(module, args):
        dims = [d for d in range(args[0].dim()) if d != 1]
        module.running_var.copy_(args[0].pow(2).mean(dims) + 1e-6)

    handles = [m.register_forward_pre_hook(calibrate) for m in model.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    try:
        model(torch.randn(8, 3, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()
    return model
