"""Tests of ground-truth channel selectivity: the AUC against brute force, object activations against hand-computed
region maxima, and the concepts the shipped VGG encodes, without changing the model."""
import numpy as np
import pytest
import torch
from torch import nn

import conceptscope as cs
from conceptscope.world.selectivity import auc, encoding_channels, object_activations, probe_dataset, selectivity


def pairwise_auc(scores, positive):
    """Reference: the share of (positive, negative) pairs ordered correctly, ties counting 0.5."""
    pos, neg = scores[positive], scores[~positive]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(80, 7)).astype(np.float32)  # few values: many ties
    scores[:, 6] = 2.0  # a constant channel: 0.5
    positive = rng.random(80) < 0.3
    result = auc(scores, positive)
    assert result.shape == (7,) and result.dtype == torch.float64
    expected = [pairwise_auc(scores[:, c], positive) for c in range(7)]
    assert np.allclose(result.numpy(), expected, atol=1e-12) and result[6] == 0.5
    assert auc(torch.from_numpy(scores[:, 0]), torch.from_numpy(positive)).ndim == 0
    assert float(auc(scores[:, 0], positive)) == pytest.approx(expected[0])


def test_auc_hand_made_and_degenerate():
    assert float(auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])) == 0.75
    assert float(auc([1, 1, 2, 2], [False, True, False, True])) == 0.5
    assert float(auc([3, 4], [False, True])) == 1.0 and float(auc([4, 3], [False, True])) == 0.0
    assert torch.isnan(auc(torch.ones(3, 2), [True, True, True])).all()


def test_selectivity_hand_made():
    def obj(kind, **values):
        return {"image": 0, "kind": kind, **dict.fromkeys(("shape", "colour", "texture", "size", "position")),
                **values}
    attributes = [obj("object", colour="red", shape="circle"), obj("object", colour="blue", shape="square"),
                  obj("object", colour="red", shape="square"), obj("corner_mark"), obj("corner")]
    scores = torch.tensor([[2.0], [1.0], [3.0], [5.0], [6.0]])
    result = selectivity({"layer": scores}, attributes, ["red", "corner_mark", "red circle", "square"])
    # the mark and its empty place count for the corner mark only
    assert result["layer"].tolist() == [[1.0, 0.75, 0.5, 0.5]]


class TwoLayers(nn.Module):
    """The input itself at full resolution (``conv``, identity) and max-pooled to an 8x8 grid (``pool``)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.pool = nn.MaxPool2d(8)
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])
            self.conv.bias.zero_()

    def forward(self, x):
        return self.head(self.pool(self.conv(x)).amax((2, 3)))


class Tokens(nn.Module):
    """An 8 px patch embedding read out as tokens (B, 1 + 64, 4) after a class token, and as the map (B, 4, 8, 8)."""

    def __init__(self):
        super().__init__()
        self.patches = nn.Conv2d(3, 4, 8, stride=8)
        self.tokens = ToTokens()
        self.head = nn.Linear(4, 7)

    def forward(self, x):
        return self.head(self.tokens(self.patches(x)).mean(1))


class ToTokens(nn.Module):
    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)


def test_object_activations_of_tokens_are_those_of_their_patches():
    """A token's region is its patch; the class token, outside every patch, is left out."""
    torch.manual_seed(0)
    dataset = cs.load_world("shapes").dataset("test", n=6, seed=5)
    found = object_activations(Tokens().eval(), dataset, ["patches", "tokens"])
    assert found.activations["tokens"].shape == (len(found.attributes), 4)
    assert torch.equal(found.activations["tokens"], found.activations["patches"])


def test_object_activations_are_region_maxima():
    dataset = cs.load_world("shapes").dataset("test", n=12, seed=5)
    found = object_activations(TwoLayers(), dataset, ["conv", "pool"], batch_size=5)
    objects = [(i, obj) for i in range(len(dataset)) for obj in dataset.objects(i)]
    assert len(found.attributes) == len(objects) and found.activations["pool"].shape == (len(objects), 3)
    for (i, obj), attributes, full, pooled in zip(objects, found.attributes, found.activations["conv"],
                                                  found.activations["pool"]):
        assert attributes == {"image": i, "kind": "object", **{k: v for k, v in obj.items() if k != "mask"}}
        image = dataset[i][0]
        assert torch.equal(full, image[:, torch.from_numpy(obj["mask"])].amax(1))
        counts = obj["mask"].reshape(8, 8, 8, 8).sum((1, 3))  # object pixels per 8x8 cell
        cells = (counts >= 32) | (counts == counts.max())
        grid = image.reshape(3, 8, 8, 8, 8).amax((2, 4))
        assert torch.equal(pooled, grid[:, torch.from_numpy(cells)].amax(1))


def test_corner_mark_pseudo_objects():
    world = cs.load_world("shapes", "spurious")
    dataset = probe_dataset(world, n=40)
    found = object_activations(world.model, dataset, "features.15")
    pseudo = [a for a in found.attributes if a["kind"] != "object"]
    assert [a["image"] for a in pseudo] == list(range(40))  # one per image: the mark or its empty place
    assert [a["kind"] == "corner_mark" for a in pseudo] == [dataset.masks(i)["corner_mark"].any() for i in range(40)]
    assert 0 < sum(a["kind"] == "corner_mark" for a in pseudo) < 40


def test_shipped_vgg_encodes_class_concepts_and_stays_unchanged(world):
    model = world.model
    state = {name: value.clone() for name, value in model.state_dict().items()}
    versions = [t._version for t in (*model.parameters(), *model.buffers())]
    encoded = encoding_channels(world, model, "features.15", n=300)
    assert set(encoded) == set(world.concepts)
    # the single-attribute class rules (yellow / dotted / cross) have channels of their own in the last conv layer
    assert len(encoded["yellow"]) >= 5 and len(encoded["dotted"]) >= 3 and len(encoded["cross"]) >= 1
    assert not encoded["left"] and not encoded["right"] and not encoded["small"]
    found = object_activations(cs.Explainer(model), world.dataset("test", n=300), "features.15")
    scores = selectivity(found.activations, found.attributes, ["red circle", "blue striped", "left"])["features.15"]
    assert (scores[:, :2].amax(0) >= 0.99).all()  # conjunctions the rules name are learnt too
    assert scores[:, 2].max() < 0.7  # position is not: the figure is not trivially high
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(value, state[name]) for name, value in model.state_dict().items())
    assert versions == [t._version for t in (*model.parameters(), *model.buffers())]
    assert not model.training
    for module in model.modules():
        assert not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)
