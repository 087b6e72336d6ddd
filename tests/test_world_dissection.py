"""Network dissection on the shapes world: masks, IoUs against a brute-force count, a hand-made yellow detector, and
agreement with the ground-truth selectivity."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import conceptscope as cs
from conceptscope.world.dissection import CONCEPTS, agreement, concept_masks, dissect
from conceptscope.world.selectivity import object_activations, selectivity


@pytest.fixture(scope="module")
def small(world):
    return world.dataset("test", n=24, seed=11)


def test_concept_masks_are_the_objects_having_every_part(small):
    for index in range(4):
        masks = concept_masks(small, index, ("red", "circle", "red circle", "large triangle"))
        by_concept = small.masks(index)
        assert np.array_equal(masks[0], by_concept["red"]) and np.array_equal(masks[1], by_concept["circle"])
        assert np.array_equal(masks[2], by_concept["red"] & by_concept["circle"])  # objects never overlap
        assert np.array_equal(masks[3], by_concept["large"] & by_concept["triangle"])


def test_iou_equals_a_brute_force_count(world, small):
    explainer = cs.Explainer(world.model)
    concepts = ("yellow", "dotted", "red circle")
    found = dissect(explainer, small, "features.6", concepts, quantile=0.99, batch_size=10)
    _, outputs = explainer.forward(torch.stack([small[i][0] for i in range(len(small))]), ["features.6"])
    acts = outputs["features.6"].numpy()
    inter = np.zeros((acts.shape[1], len(concepts)))
    union = np.zeros_like(inter)
    for unit in range(acts.shape[1]):
        values = np.sort(acts[:, unit].ravel())
        threshold = values[int(round(0.99 * values.size)) - 1]
        assert found.thresholds[unit] == pytest.approx(threshold)
        for i in range(len(small)):
            up = F.interpolate(torch.from_numpy(acts[i:i + 1, unit:unit + 1]), size=(64, 64), mode="bilinear").numpy()
            active = up[0, 0] > threshold
            for k, mask in enumerate(concept_masks(small, i, concepts)):
                inter[unit, k] += (active & mask).sum()
                union[unit, k] += (active | mask).sum()
    assert np.allclose(found.iou.numpy(), np.where(union > 0, inter / np.maximum(union, 1), 0))


def test_a_hand_made_yellow_detector_is_labelled_yellow(world, small):
    mean, std = torch.tensor(world.mean), torch.tensor(world.std)
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():  # relu(R + G - 2 B - 0.9) on the un-normalised colours: only yellow is that bright in R, G
        rgb = torch.tensor([1.0, 1.0, -2.0])
        conv.weight.copy_((rgb * std).reshape(1, 3, 1, 1))
        conv.bias.fill_(float((rgb * mean).sum()) - 0.9)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2)).eval()
    found = dissect(model, small, "1", quantile=0.9)
    (unit, concept, iou), = found.best()
    assert (unit, concept) == (0, "yellow") and iou > 0.3  # the darker stripes and dots of yellow objects fall out
    others = found.iou[0, [k for k, c in enumerate(CONCEPTS) if "yellow" not in c.split()]]
    assert iou > 2 * float(others.max())
    assert found.detectors(0.3) == {"yellow": [0]}
    assert [row["detectors"] for row in found.summary((0.3, 0.99))] == [1, 0]


def test_detector_labels_agree_with_ground_truth_selectivity(world):
    data = world.dataset("test", n=60, seed=12)
    explainer = cs.Explainer(world.model)
    found = dissect(explainer, data, "features.6")
    activations = object_activations(explainer, data, "features.6")
    auc = selectivity(activations.activations["features.6"], activations.attributes, list(CONCEPTS))
    result = agreement(found, auc, CONCEPTS)
    # measured: 200 images 0.94 encode their label, 1.0 best-AUC (benchmarks/methods.py dissection)
    assert result["detectors"] >= 8 and result["encodes"] >= 0.75 and result["same_best"] >= 0.75


def test_bad_input_gets_clear_errors(world, small):
    with pytest.raises(ValueError, match="no \\(batch, units, height, width\\) output"):
        dissect(world.model, small, "classifier.0")
    with pytest.raises(ValueError, match="quantile must be in"):
        dissect(world.model, small, "features.2", quantile=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        dissect(world.model, world.dataset("test", n=0), "features.2")
