"""Discovery of a model's concept layers (convolutions and linear layers, and the blocks of a transformer) and their
channel counts."""
import torch

from ..errors import UnknownLayerError

CONCEPT_LAYER_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)


class AttentionHeads(torch.nn.Identity):
    """Marks an attention's per-head outputs ``(B, N, heads, head_dim)`` — each head's attention-weighted values,
    before the output projection joins them — so that a head can be a concept: name this module as a layer and its
    concepts are the heads (concept axis 2; a head's relevance is summed over its tokens and dimensions). The
    identity; it holds no weights, so adding it to an attention leaves the model's state dict unchanged."""

    def __init__(self, num_heads: int):
        super().__init__()
        self.num_heads = num_heads


def layers(model):
    """Return ``{name: channels}`` for every convolution and linear layer of ``model``, in definition order."""
    return {
        name: module.out_channels if hasattr(module, "out_channels") else module.out_features
        for name, module in model.named_modules()
        if isinstance(module, CONCEPT_LAYER_TYPES)
    }


def linear_only(module):
    """Whether ``module``'s weight layers are linear layers only (at least one, no convolution): its features lie on
    the last axis of its output, as a linear layer's do."""
    kinds = [m for m in module.modules() if isinstance(m, CONCEPT_LAYER_TYPES)]
    return bool(kinds) and all(isinstance(m, torch.nn.Linear) for m in kinds)


def width(module):
    """The number of features ``module`` writes, where its weights tell (convolutions, linear layers, normalisations),
    or heads (:class:`AttentionHeads`); None for other modules."""
    if isinstance(module, CONCEPT_LAYER_TYPES):
        return module.out_channels if hasattr(module, "out_channels") else module.out_features
    if isinstance(module, torch.nn.modules.batchnorm._NormBase):
        return module.num_features
    if isinstance(module, torch.nn.GroupNorm):
        return module.num_channels
    if isinstance(module, torch.nn.LayerNorm) and module.normalized_shape:
        return module.normalized_shape[-1]
    if isinstance(module, AttentionHeads):
        return module.num_heads
    return None


def blocks(model):
    """Names of the blocks of a transformer (or MLP-mixer): the items of a stack (``nn.Sequential`` or
    ``nn.ModuleList``) of two or more modules of one class built of linear layers only, in definition order. Their
    outputs (the residual stream) are the concepts a user drills into first; blocks with convolutions (ResNet,
    ConvNeXt) are not listed: their convolutions are."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList)) and len(module) >= 2:
            kinds = {type(child) for child in module}
            child = next(iter(module))
            if len(kinds) == 1 and not isinstance(child, CONCEPT_LAYER_TYPES) and linear_only(child):
                found += [f"{name}.{key}" if name else key for key, _ in module.named_children()]
    return found


def input_channels(model):
    """What the model's first concept layer expects: ``(dims, channels)`` of one sample, e.g. ``(3, 3)`` for RGB
    images into a Conv2d and ``(1, 4)`` for 4 features into a Linear; ``(None, None)`` if unknown."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            return 1, module.in_features
        if isinstance(module, CONCEPT_LAYER_TYPES):
            return module.weight.dim() - 1, module.in_channels
    return None, None


def check_layer(model, name):
    """Raise an :class:`~conceptscope.errors.UnknownLayerError` (a ``KeyError``) that lists the valid layer names
    when ``name`` is not a module of ``model``."""
    names = dict(model.named_modules())
    if name not in names or name == "":
        valid = ", ".join(layers(model)) or "(none)"
        raise UnknownLayerError(
            f"model has no layer {name!r}; concept layers are: {valid} (any other module name of the model works too)"
        )
    return names[name]
