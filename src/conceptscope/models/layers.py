"""Discovery of a model's concept layers (convolutions and linear layers) and their channel counts."""
import torch

from ..errors import UnknownLayerError

CONCEPT_LAYER_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)


def layers(model):
    """Return ``{name: channels}`` for every convolution and linear layer of ``model``, in definition order."""
    return {
        name: module.out_channels if hasattr(module, "out_channels") else module.out_features
        for name, module in model.named_modules()
        if isinstance(module, CONCEPT_LAYER_TYPES)
    }


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
