"""Targets beyond a class logit (L-CRP): a class inside a region of a segmentation output, one element of any output
(one detection's score or box coordinate), and clear refusals — checked against hand-derived values and conservation.
"""
import pytest
import torch
import torchvision
from torch import nn

import conceptscope as cs
from tests.helpers import assert_unchanged, model_state


class Segmenter(nn.Module):
    """A small bias-free fully convolutional segmenter: stride-2 features, a 1x1 classifier, upsampled back."""

    def __init__(self, classes=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.ReLU())
        self.classifier = nn.Conv2d(16, classes, 1, bias=False)

    def forward(self, x):
        return {"out": nn.functional.interpolate(self.classifier(self.features(x)), scale_factor=2, mode="nearest")}


class Detector(nn.Module):
    """A single-stage dense detector: class scores and box offsets per cell of a stride-4 grid, before any NMS."""

    def __init__(self, classes=3):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.ReLU())
        self.scores = nn.Conv2d(16, classes, 1, bias=False)
        self.boxes = nn.Conv2d(16, 4, 1, bias=False)

    def forward(self, x):
        features = self.backbone(x)
        return self.scores(features), self.boxes(features)


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    return Segmenter().eval()


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(1)
    return torch.randn(1, 3, 16, 16)


def box(rows, cols, size=(16, 16)):
    mask = torch.zeros(size, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def test_a_linear_segmenter_s_region_relevance_is_its_output_inside_the_mask():
    """Hand-derived: for out = W x (a 1x1 convolution), LRP-epsilon of class c inside mask M gives pixel (i, j) the
    relevance M_ij * sum_k W_ck x_kij, the class's own output there."""
    torch.manual_seed(2)
    linear = nn.Conv2d(3, 4, 1, bias=False).eval()
    x = torch.randn(1, 3, 8, 8)
    mask = box(slice(2, 6), slice(1, 5), (8, 8))
    heatmap = cs.Explainer(linear, "epsilon").heatmap(x, cs.Region(2, mask))[0]
    expected = linear(x)[0, 2].detach() * mask
    torch.testing.assert_close(heatmap, expected, rtol=1e-4, atol=1e-6)


def test_region_relevance_is_conserved_and_additive_over_disjoint_masks(segmenter, image):
    xp = cs.Explainer(segmenter, output="out")
    out = segmenter(image)["out"][0].detach()
    left, right = box(slice(2, 10), slice(0, 6)), box(slice(2, 10), slice(6, 12))
    both = xp.heatmap(image, cs.Region(1, left | right))
    assert float(both.sum()) == pytest.approx(float(out[1][left | right].sum()), rel=1e-4)
    torch.testing.assert_close(both, xp.heatmap(image, cs.Region(1, left)) + xp.heatmap(image, cs.Region(1, right)),
                               rtol=1e-4, atol=1e-5)


def test_the_default_region_is_where_the_model_predicts_the_class(segmenter, image):
    xp = cs.Explainer(segmenter, output="out")
    out = segmenter(image)["out"][0].detach()
    cls = int(out.argmax(0).flatten().mode().values)
    predicted = out.argmax(0) == cls
    torch.testing.assert_close(xp.heatmap(image, cs.Region(cls)), xp.heatmap(image, cs.Region(cls, predicted)))


def test_a_mask_of_another_size_is_pooled_onto_the_output_grid():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2, bias=False)).eval()
    x = torch.randn(1, 3, 8, 8)
    mask = box(slice(0, 4), slice(0, 2), (8, 8))  # covers output cells (0, 0) and (1, 0) fully
    out = model(x)[0, 1].detach()
    heatmap = cs.Explainer(model, "epsilon").heatmap(x, cs.Region(1, mask))
    assert float(heatmap.sum()) == pytest.approx(float(out[0, 0] + out[1, 0]), rel=1e-4)


def test_concepts_and_conditional_heatmaps_of_a_region(segmenter, image):
    xp = cs.Explainer(segmenter, output="out")
    mask = box(slice(4, 12), slice(4, 12))
    explanation = xp.explain(image, cs.Region(3, mask))
    total = explanation.concept_relevance("features.2").sum()
    assert float(total) == pytest.approx(float(explanation.heatmap.sum()), rel=1e-4)
    top = explanation.top_concepts("features.2", 3)
    maps = explanation.conditional_heatmaps("features.2", [c.channel for c in top])
    assert [float(m.sum()) for m in maps] == pytest.approx([c.relevance for c in top], rel=1e-4)
    # the explanation is cached per mask content, not per mask object
    assert xp.explain(image, cs.Region(3, mask.clone())) is explanation
    assert xp.explain(image, cs.Region(3, box(slice(0, 4), slice(0, 4)))) is not explanation


def test_one_detection_s_score_and_box_coordinate():
    torch.manual_seed(4)
    detector = Detector().eval()
    x = torch.randn(2, 3, 16, 16)
    scores, boxes = (t.detach() for t in detector(x))
    # cell (r, c) of the stride-4 grid sees input rows and columns 4r - 3 .. 4r + 3 (two 3x3 convolutions, stride 2)
    for output, target, value, (r, c) in ((0, cs.Output((2, 1, 3)), scores[:, 2, 1, 3], (1, 3)),
                                          (1, cs.Output((0, 2, 2)), boxes[:, 0, 2, 2], (2, 2))):
        heatmaps = cs.Explainer(detector, output=output).heatmap(x, target)
        torch.testing.assert_close(heatmaps.flatten(1).sum(1), value, rtol=1e-4, atol=1e-6)
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[max(0, 4 * r - 3):4 * r + 4, max(0, 4 * c - 3):4 * c + 4] = True
        assert heatmaps[:, ~inside].abs().max() == 0 and heatmaps[:, inside].abs().max() > 0
    explanation = cs.Explainer(detector, output=0).explain(x[:1], cs.Output((2, 1, 3)))
    assert float(explanation.concept_relevance("backbone.2").sum()) == pytest.approx(float(scores[0, 2, 1, 3]),
                                                                                     rel=1e-4)


@pytest.mark.parametrize("target, error, message", [
    (None, ValueError, r"a dense \(e.g. per-pixel\) output needs a target"),
    (1, ValueError, "cs.Region"),
    (cs.Contrast(0, 1), ValueError, "cs.Region"),
    (cs.Region(9), ValueError, "valid targets: 0..3"),
    (cs.Region(1, torch.zeros(16, 16, dtype=torch.bool)), ValueError, "mask is empty"),
    (cs.Region(1, torch.ones(16, 16)), ValueError, "bool"),
    (cs.Region(1, torch.ones(2, 16, 16, dtype=torch.bool)), ValueError, r"bool \(H, W\)"),
    (cs.Region(1, torch.ones(30, 30, dtype=torch.bool)), ValueError, r"\(30, 30\) does not fit the output.s grid"),
    (cs.Output((1, 99, 0)), ValueError, r"does not point into the per-image output of shape \(4, 16, 16\)"),
    (cs.Output((1, 0)), ValueError, "does not point into"),
])
def test_bad_dense_targets_are_refused_clearly(segmenter, image, target, error, message):
    before = model_state(segmenter)
    with pytest.raises(error, match=message):
        cs.Explainer(segmenter, output="out").heatmap(image, target)
    assert_unchanged(segmenter, before)


def test_region_on_a_classifier_and_bad_output_indices_are_refused(world):
    image = world.dataset("test", n=1)[0][0]
    with pytest.raises(ValueError, match="a Region explains a class inside a region of a dense"):
        cs.Explainer(world.model).heatmap(image, cs.Region(1, torch.ones(64, 64, dtype=torch.bool)))
    with pytest.raises(TypeError, match="Output index must be a tuple of ints"):
        cs.Output((1.5,))
    with pytest.raises(TypeError, match="Output index must be a tuple of ints"):
        cs.Output((True,))
    torch.testing.assert_close(cs.Explainer(world.model).heatmap(image, cs.Output(3)),
                               cs.Explainer(world.model).heatmap(image, 3))


def test_a_class_predicted_nowhere_needs_a_mask(image):
    model = Segmenter().eval()
    with torch.no_grad():
        model.classifier.weight[0] = -1000.0  # class 0 loses everywhere: its output is -1000 x the features' sum
    assert not (model(image)["out"][0].argmax(0) == 0).any()
    with pytest.raises(ValueError, match="predicts class 0 nowhere in this image"):
        cs.Explainer(model, output="out").heatmap(image, cs.Region(0))


def test_torchvision_detectors_are_refused_naming_nms():
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                         num_classes=3).eval()
    with pytest.raises(cs.UntraceableModelError, match="non-maximum suppression inside forward"):
        cs.Explainer(model).heatmap(torch.randn(1, 3, 64, 64), cs.Output((0,)))
