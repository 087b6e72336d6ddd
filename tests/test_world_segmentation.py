"""The shapes world's segmenter and detector (L-CRP): metrics checked by hand and on fresh images, conserving
heatmaps of a segment and of a detection, their relevance graded against the objects and boxes, the context analysis
finding the spurious corner mark, and bad input refused with the user's model unchanged."""
import numpy as np
import pytest
import torch
from zennit.composites import EpsilonPlusFlat

import conceptscope as cs
from conceptscope.evaluation.context import context_use
from conceptscope.models import canonizers_for
from conceptscope.world import grading
from conceptscope.world.concepts import CORNER_MARK
from conceptscope.world.dataset import render
from conceptscope.world.dense_nets import ShapesDetector
from conceptscope.world.detection import (
    average_precisions,
    decode,
    detect,
    detection_output,
    encode,
    mean_average_precision,
    object_boxes,
)
from conceptscope.world.segmentation import iou_per_class, label_maps, mean_iou

from .helpers import assert_unchanged, model_state, relative_error

FRESH = 4343  # a seed that neither training nor the shipped metrics use
LAYER = "backbone.features.6"


@pytest.fixture(scope="module")
def segmenter(world):
    return world.load_model("segmenter")


@pytest.fixture(scope="module")
def fresh(world):
    return world.dataset("test", n=20, seed=FRESH)


def bias_free(model, **kwargs):
    """An explainer whose rules ignore the biases, so that relevance is conserved layer by layer."""
    return cs.Explainer(model, EpsilonPlusFlat(zero_params="bias", canonizers=canonizers_for(model)), **kwargs)


def test_iou_and_average_precision_by_hand():
    predicted, truth = torch.tensor([[0, 1, 1, 2]]), torch.tensor([[0, 1, 2, 2]])
    np.testing.assert_allclose(iou_per_class(predicted, truth, 4), [1, 0.5, 0.5, np.nan])
    assert mean_iou(predicted, truth, 4) == pytest.approx(2 / 3)
    truths = [(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 0]))]
    found = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [40, 40, 50, 50], [21, 21, 30, 30]]),
              "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 0, 0])}]
    # hits at ranks 1 and 3: precision 1 up to recall 1/2, then 2/3 up to recall 1
    precisions = average_precisions(found, truths, 2)
    assert precisions[0] == pytest.approx(0.5 + 0.5 * 2 / 3) and np.isnan(precisions[1])
    found[0]["boxes"][2] = torch.tensor([25.0, 25, 35, 35])  # IoU 25/175 < 0.5: a miss
    assert mean_average_precision(found, truths, 2) == pytest.approx(0.5)


def test_boxes_come_from_the_masks_and_survive_encoding_and_decoding(world):
    dataset = world.dataset("test", n=30, seed=FRESH)
    for i in range(len(dataset)):
        boxes, labels = object_boxes(dataset, i)
        mask = dataset.evidence_mask(i)
        assert (labels == dataset.label(i)).all() and len(boxes) >= 1
        ys, xs = np.nonzero(mask)
        assert boxes[:, 0].min() == xs.min() and boxes[:, 2].max() == xs.max() + 1
        heatmap, edges, _ = encode(boxes, labels, len(world.classes), 64)
        (found,) = decode(torch.logit(heatmap.clamp(1e-4, 1 - 1e-4))[None], edges[None])
        order = lambda b: b[torch.argsort(b[:, 0])]  # noqa: E731
        torch.testing.assert_close(order(found["boxes"]), order(boxes))
        assert (found["labels"] == dataset.label(i)).all()


def test_a_segment_s_heatmap_conserves_its_region_output(world, segmenter, fresh):
    model = world.load_model("segmenter").double()
    xp = bias_free(model)
    for i in range(3):
        image, mask = fresh[i][0].double(), torch.from_numpy(fresh.evidence_mask(i))
        target = cs.Region(fresh.label(i) + 1, mask)
        explanation = xp.explain(image, target, ["backbone.stem.0"])  # every path to the output passes the stem
        expected = model(image[None])[0, fresh.label(i) + 1][mask].sum().detach()
        assert float(explanation.heatmap.sum()) == pytest.approx(float(expected), rel=1e-3)
        total = explanation.conditional_heatmaps("backbone.stem.0", range(16)).sum(0)
        assert relative_error(total, explanation.heatmap) <= 1e-6


def test_segmenter_mean_iou_on_fresh_images(world, segmenter):
    """Shipped: mean IoU 0.956 on the 500-image test split (assets/dense_metrics.json), 0.957 on 1000 fresh images
    (benchmarks/dense.py)."""
    dataset = world.dataset("test", n=200, seed=FRESH)
    predicted = torch.cat([segmenter(world.normalize(render(dataset)[0])).argmax(1)])
    assert mean_iou(predicted, label_maps(dataset), len(world.classes) + 1) >= 0.9


def test_a_segment_s_relevance_lies_on_the_object_and_around_it(world, segmenter, fresh):
    """Measured on 100 fresh images (benchmarks/dense.py): 67 % of the positive relevance on the objects (7 % of the
    image), 16 % on a 3 px ring around them; images whose region heatmap has no positive relevance are not graded."""
    summary = grading.grade_segments(cs.Explainer(segmenter, mean=world.mean, std=world.std), fresh).summary()
    assert summary["graded"] >= 0.75 * summary["images"]
    assert summary["inside"] + summary["around"] >= 0.8 and summary["inside"] >= 5 * summary["area_inside"]


def test_context_analysis_finds_the_spurious_corner_mark(world):
    """The "spurious" segmenter learnt the corner mark that co-occurred with "green square" in training: with the
    mark on every image it labels crosses and large triangles "green square" (assets/dense_metrics.json: their IoU
    falls from 0.92 and 0.86 to 0.02 and 0.0). L-CRP's context analysis finds it: its green-square decisions draw
    more relevance from outside the object than the other classes' (70 % against 41 % on 70 fresh marked images,
    benchmarks/dense.py), and the top green-square concept lies for the most part on the mark (54 %)."""
    spurious = cs.load_world("shapes", "spurious")
    marked = spurious.dataset("test", n=40, seed=FRESH, corner_mark="all")
    explainer = cs.Explainer(spurious.load_model("segmenter"), mean=world.mean, std=world.std)
    result = grading.segment_context(explainer, marked, LAYER, k=8)
    groups = result.per_group()
    others = np.nanmean([g["context"] for name, g in groups.items() if name != "green square"])
    assert groups["green square"]["images"] >= 4
    assert groups["green square"]["context"] >= others + 0.15
    top = result.concepts("green square")[0]
    cue_area = np.mean([marked.masks(i)[CORNER_MARK].mean() for i in range(len(marked))])
    assert cue_area < 0.01 and top["on_cue"] >= 0.3  # 30 times its share of the image, at least


@pytest.fixture(scope="module")
def detector(world):
    return world.load_model("detector")


def test_detector_map_on_fresh_images(world, detector):
    """Shipped: mAP@0.5 1.0 on the 500-image test split (assets/dense_metrics.json) and on 1000 fresh images."""
    dataset = world.dataset("test", n=200, seed=FRESH)
    truths = [object_boxes(dataset, i) for i in range(len(dataset))]
    found = detect(detector, render(dataset)[0])
    assert mean_average_precision(found, truths, len(world.classes)) >= 0.95


def test_a_detection_s_heatmaps_conserve_its_score_and_box_edge(world, fresh):
    model = world.load_model("detector").double()
    images = torch.stack([fresh[i][0] for i in range(4)]).double()
    heat, edges = (t.detach() for t in model(images))
    detections = decode(heat, edges)
    assert all(len(d["scores"]) for d in detections)
    for output, edge, values in ((0, None, heat), (1, 2, edges)):
        targets = [detection_output(d, 0, edge) for d in detections]
        heatmaps = bias_free(model, output=output).heatmap(images, targets)
        expected = torch.stack([values[row][t.index] for row, t in enumerate(targets)])
        torch.testing.assert_close(heatmaps.flatten(1).sum(1), expected, rtol=1e-3, atol=1e-6)


def test_a_detection_s_relevance_lies_in_its_box(world, detector, fresh):
    """Measured on 100 fresh images (benchmarks/dense.py): 77 % of the positive relevance inside the box (9 % of the
    image)."""
    explainer = cs.Explainer(detector, output=0, mean=world.mean, std=world.std)
    summary = grading.grade_detections(explainer, fresh).summary()
    assert summary["inside"] >= 0.6 and summary["inside"] >= 4 * summary["area_inside"]


def test_bad_input_is_refused_and_the_model_is_unchanged(world, segmenter, fresh):
    torch.manual_seed(0)
    detector = ShapesDetector(len(world.classes)).eval()  # refusals do not depend on training
    before = {name: model_state(model) for name, model in (("segmenter", segmenter), ("detector", detector))}
    image = fresh[0][0]
    xs = cs.Explainer(segmenter)
    with pytest.raises(ValueError, match="mask is empty"):
        xs.heatmap(image, cs.Region(1, torch.zeros(64, 64, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r"bool \(H, W\)"):
        xs.heatmap(image, cs.Region(1, torch.ones(2, 64, 64, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r"object mask 0 must be a bool mask of the image's size \(64, 64\)"):
        context_use(xs, image[None], [cs.Region(1)], [np.ones((32, 32), bool)], LAYER)
    with pytest.raises(ValueError, match="object mask 0 is empty"):
        context_use(xs, image[None], [cs.Region(1)], [np.zeros((64, 64), bool)], LAYER)
    with pytest.raises(ValueError, match="got 2 masks for 1 images"):
        context_use(xs, image[None], [cs.Region(1)], [np.ones((64, 64), bool)] * 2, LAYER)
    (detections,) = decode(torch.full((1, 7, 16, 16), -9.0).index_put_((torch.tensor([0]), torch.tensor([3]),
                                                                         torch.tensor([5]), torch.tensor([6])),
                                                                        torch.tensor(2.0)), torch.ones(1, 4, 16, 16))
    count = len(detections["scores"])
    assert count == 1 and detections["cells"][0].tolist() == [3, 5, 6]
    assert detection_output(detections, 0) == cs.Output((3, 5, 6))
    assert detection_output(detections, 0, edge=2) == cs.Output((2, 5, 6))
    with pytest.raises(IndexError, match=f"detection {count} does not exist: this image has {count} detection"):
        detection_output(detections, count)
    with pytest.raises(ValueError, match="edge must be 0"):
        detection_output(detections, 0, edge=4)
    with pytest.raises(ValueError, match=r"does not point into the per-image output of shape \(7, 16, 16\)"):
        cs.Explainer(detector, output=0).heatmap(image, cs.Output((7, 0, 0)))
    with pytest.raises(ValueError, match="no model 'detector' is shipped for variant 'spurious'"):
        cs.load_world("shapes", "spurious").load_model("detector")
    for name, model in (("segmenter", segmenter), ("detector", detector)):
        assert_unchanged(model, before[name])


@pytest.mark.slow
def test_training_is_deterministic(world):
    from conceptscope.world.train_dense import train_detector, train_segmenter

    dataset = world.dataset("train", n=8)
    for train, classes in ((train_segmenter, 8), (train_detector, 7)):
        first, second = (train(dataset, classes, seed=0, steps=2, batch=4).state_dict() for _ in range(2))
        assert all(torch.equal(first[name], second[name]) for name in first)
