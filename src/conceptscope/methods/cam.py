"""Class activation maps at a chosen layer, upsampled to the input: Grad-CAM (Captum's ``LayerGradCam``) and
Grad-CAM++ (written here: Captum has none)."""
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam


def find_layer(model, images, layer=None):
    """``(name, module)`` of ``layer`` (a module name), or by default of the last module, in forward order, whose
    output is a map ``(B, C, h, w)`` with h, w > 1. Raises a clear error for unknown or non-spatial layers."""
    modules = dict(model.named_modules())
    if layer is not None and layer not in modules:
        spatial = ", ".join(name for name, _ in _spatial_layers(model, images)[-5:])
        raise KeyError(f"the model has no layer {layer!r}; spatial layers near the output: {spatial}")
    found = _spatial_layers(model, images)
    if layer is None:
        if not found:
            raise ValueError("Grad-CAM needs a layer with a spatial output (B, C, h, w), h, w > 1; this model has none")
        return found[-1]
    if layer not in dict(found):
        raise ValueError(f"Grad-CAM layer {layer!r} has no spatial extent (its output is not (B, C, h, w) with "
                         f"h, w > 1); choose a convolutional layer, e.g. {found[-1][0]!r}" if found else
                         f"Grad-CAM layer {layer!r} has no spatial extent and the model has no layer that has")
    return layer, modules[layer]


def _spatial_layers(model, images):
    """``[(name, module)]`` whose outputs are maps with h, w > 1, in the order the forward pass calls them."""
    found, handles = [], []
    for name, module in model.named_modules():
        if name:
            def record(module, _inputs, output, name=name):
                if isinstance(output, torch.Tensor) and output.ndim == 4 and min(output.shape[-2:]) > 1:
                    found.append((name, module))
            handles.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    return list(dict(found).items())


def gradcam(model, images, targets, layer=None):
    """Grad-CAM (Selvaraju et al. 2017): ReLU of the layer's channels weighted by their mean gradient, bilinearly
    upsampled to the input size."""
    _, module = find_layer(model, images, layer)
    cam = LayerGradCam(model, module).attribute(images, target=targets, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(images.shape[-2:]), "bilinear")[:, 0]


def gradcam_plus_plus(model, images, targets, layer=None):
    """Grad-CAM++ (Chattopadhay et al. 2018) with the exponential-score closed form: pixel weights
    alpha = g^2 / (2 g^2 + sum(A) g^3), channel weights sum(alpha * relu(g)); ReLU, bilinear upsampling."""
    _, module = find_layer(model, images, layer)
    store = {}
    handle = module.register_forward_hook(lambda _m, _i, output: store.update(a=output))
    try:
        with torch.enable_grad():
            inputs = images.detach().requires_grad_(True)
            logits = model(inputs)
            score = logits[torch.arange(len(targets)), torch.as_tensor(targets, device=logits.device)].sum()
            (grads,) = torch.autograd.grad(score, store["a"])
    finally:
        handle.remove()
    activations = store["a"].detach()
    g2, g3 = grads.pow(2), grads.pow(3)
    denominator = 2 * g2 + activations.sum((2, 3), keepdim=True) * g3
    alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * grads.clamp_min(0)).sum((2, 3), keepdim=True)
    cam = (weights * activations).sum(1, keepdim=True).clamp_min(0)
    return F.interpolate(cam, size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
