"""Model loading and layer discovery."""
import pytest
import torch

import conceptscope as cs
from conceptscope.models import WeightsUnavailableError, checkpoint_path, layers, load


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'vgg17'; available models: 'vgg16', 'vgg16_bn'"):
        load("vgg17")


def test_offline_weights_error_names_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as info:
        load("resnet18", pretrained=True)
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path / "hub" / "checkpoints") in message


def test_cached_weights_are_loaded_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = load("resnet18", pretrained=False)
    from torchvision.models import ResNet18_Weights
    path = checkpoint_path(ResNet18_Weights.IMAGENET1K_V1)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = load("resnet18", pretrained=True)
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


def test_layers_lists_convolutions_and_linears_with_channels():
    found = layers(load("vgg16", pretrained=False))
    assert len(found) == 16 and found["features.0"] == 64 and found["features.28"] == 512
    assert found["classifier.6"] == 1000


def test_unknown_world():
    with pytest.raises(ValueError, match="unknown world 'cubes'; available worlds: 'shapes'"):
        cs.load_world("cubes")
