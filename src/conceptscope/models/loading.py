"""Loading torchvision models with their ImageNet weights, with a clear message when weights cannot be downloaded."""
import os
from pathlib import Path

import torch
import torchvision

MODELS = {
    "vgg16": ("vgg16", "VGG16_Weights"),
    "vgg16_bn": ("vgg16_bn", "VGG16_BN_Weights"),
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
}


class WeightsUnavailableError(RuntimeError):
    """The pretrained weights are neither cached nor downloadable."""


def checkpoint_path(weights):
    """Where torchvision looks for the weight file of ``weights`` (inside ``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load(name, pretrained=True):
    """Return torchvision model ``name`` in eval mode, with ImageNet weights if ``pretrained``.

    Offline, when the weight file is not in the torch hub cache, raises :class:`WeightsUnavailableError` saying which
    file to place where.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(map(repr, MODELS))}")
    builder_name, weights_name = MODELS[name]
    builder = getattr(torchvision.models, builder_name)
    if not pretrained:
        return builder(weights=None).eval()
    weights = getattr(torchvision.models, weights_name).IMAGENET1K_V1
    path = checkpoint_path(weights)
    try:
        return builder(weights=weights).eval()
    except Exception as error:  # urllib, ssl and socket errors differ by platform; all mean "could not download"
        if path.exists():
            raise
        raise WeightsUnavailableError(
            f"could not download the ImageNet weights of {name} ({type(error).__name__}: {error}). "
            f"Download {weights.url} on a machine with internet access and place it at {path} "
            "(set TORCH_HOME to use another cache folder)."
        ) from error
