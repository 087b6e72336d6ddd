"""The explorer on the shapes world's segmenter and detector (L-CRP): the target view lists the predicted segments
(detections), a click on one — in the list or on it in the heatmap — explains it alone, and concepts, conditional
heatmaps and the tree follow; every shown map is checked against a direct explanation of that target. Bad input:
clear errors, the model unchanged."""
import numpy as np
import pytest
import torch
import torchvision
from scipy import ndimage

import conceptscope as cs
from conceptscope.engine.segments import MIN_PIXELS, predicted_segments, segment_at
from conceptscope.widgets import explore
from conceptscope.world.detection import detect, detection_output, detection_segments
from conceptscope.world.segmentation import segment_classes
from tests.helpers import assert_unchanged, deliver, model_state, wired

LAYER = "backbone.fuse.0"


@pytest.fixture(scope="module")
def classes(world):
    return segment_classes(world)


@pytest.fixture(scope="module")
def segmenter(world):
    return world.load_model("segmenter")


@pytest.fixture(scope="module")
def xp(segmenter, classes):
    return cs.Explainer(segmenter, classes=classes)


@pytest.fixture(scope="module")
def data(world):
    return world.dataset("test", 64)


@pytest.fixture(scope="module")
def index(segmenter, data, classes):
    """An image on which the segmenter predicts two objects of at least 30 pixels each."""
    for i in range(len(data)):
        with torch.no_grad():
            found = predicted_segments(segmenter(data[i][0][None])[0], (64, 64), classes)
        if len(found) >= 2 and found[1].mask.sum() >= 30:
            return i
    raise AssertionError("the segmenter predicts two objects on none of 64 test images")


def inside(mask):
    """A pixel (x, y) deep inside a mask (the one farthest from its edge)."""
    from scipy import ndimage

    y, x = np.unravel_index(ndimage.distance_transform_edt(mask).argmax(), mask.shape)
    return int(x), int(y)


def test_segments_are_the_connected_components_of_the_predicted_classes(segmenter, data, index, classes):
    with torch.no_grad():
        predicted = segmenter(data[index][0][None])[0].argmax(0).numpy()
    found = predicted_segments(torch.from_numpy(np.eye(8)[predicted].transpose(2, 0, 1)), (64, 64), classes)
    union = np.zeros((64, 64), bool)
    for segment in found:
        assert not (union & segment.mask).any()  # disjoint
        union |= segment.mask
        assert (predicted[segment.mask] == segment.cls).all() and segment.cls != 0
        assert segment.target.cls == segment.cls and segment.target.mask is segment.mask
        assert segment.name == classes[segment.cls] and segment.score == pytest.approx(segment.mask.mean())
        x0, y0, x1, y1 = segment.box
        assert segment.mask[y0:y1, x0:x1].sum() == segment.mask.sum()
        assert segment_at(found, *inside(segment.mask)) == found.index(segment)
    kept = np.zeros((64, 64), bool)  # the predicted objects, the noise pieces under MIN_PIXELS left out
    for cls in range(1, 8):
        components, count = ndimage.label(predicted == cls, structure=np.ones((3, 3)))
        for label in range(1, count + 1):
            if (components == label).sum() >= MIN_PIXELS:
                kept |= components == label
    np.testing.assert_array_equal(union, kept)
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    assert segment_at(found, *inside(predicted == 0)) is None


def test_noise_pieces_are_not_segments():
    """A 3x3 square of class 2 is a segment, a 2-pixel piece of class 1 (diagonal: one 8-connected piece) is not."""
    predicted = np.zeros((16, 16), int)
    predicted[2:5, 2:5] = 2
    predicted[10, 10] = predicted[11, 11] = 1
    found = predicted_segments(torch.from_numpy(np.eye(3)[predicted].transpose(2, 0, 1)), (16, 16))
    assert [(s.cls, s.box) for s in found] == [(2, (2, 2, 5, 5))]
    assert len(predicted_segments(torch.from_numpy(np.eye(3)[predicted].transpose(2, 0, 1)), (16, 16),
                                  min_pixels=1)) == 2


def test_a_click_on_a_segment_explains_it_and_concepts_follow(xp, data, index, classes):
    image = data[index][0]
    ex = wired(explore(xp, image, picture=data.raw_image(index), layer=LAYER))
    segments = ex.controller.subject.segments
    assert [s["name"] for s in ex.target.segments] == [s.name for s in segments] and ex.target.segment == 0
    first = xp.heatmap(image, cs.Region(segments[0].cls, segments[0].mask)).numpy()
    np.testing.assert_allclose(ex.heatmap.relevance, first, rtol=1e-5, atol=1e-7)
    # a click on the second segment in the heatmap: its region alone is explained
    x, y = inside(segments[1].mask)
    reply = deliver(ex, ex.heatmap, type="pixel", id=1, x=x, y=y)
    assert reply["type"] == "pixel_result" and reply["value"] == pytest.approx(float(first[y, x]))
    assert ex.controller.segment == 1 and ex.target.segment == 1 and ex.target.target == segments[1].cls
    second = xp.explain(image, cs.Region(segments[1].cls, segments[1].mask), [LAYER])
    np.testing.assert_allclose(ex.heatmap.relevance, second.heatmap.numpy(), rtol=1e-5, atol=1e-7)
    assert ex.heatmap.logit == pytest.approx(float(segments[1].mask.astype(float).__mul__(
        second.logits[segments[1].cls].numpy()).sum()), rel=1e-5)  # ΣR starts from the class's output over the mask
    assert float(np.abs(ex.heatmap.relevance - first).max()) > 1e-3  # another target, another map
    assert [c["channel"] for c in ex.concepts.concepts] == [c.channel for c in second.top_concepts(LAYER, 8)]
    # drill into a concept: its conditional heatmap for this segment, and its composition tree
    channel = ex.concepts.concepts[0]["channel"]
    deliver(ex, ex.concepts, type="select", id=2, layer=LAYER, channel=channel)
    np.testing.assert_allclose(ex.heatmap.concept_relevance, second.conditional_heatmaps(LAYER, [channel])[0].numpy(),
                               rtol=1e-5, atol=1e-7)
    assert ex.tree.tree["path"] == [[LAYER, channel]] and ex.tree.tree["children"]
    # a click on the background changes nothing; a class bar explains the class's whole predicted region
    deliver(ex, ex.heatmap, type="pixel", id=3, x=0, y=0)
    assert ex.controller.segment == 1
    deliver(ex, ex.target, type="target", id=4, target=segments[0].cls)
    np.testing.assert_allclose(ex.heatmap.relevance, xp.heatmap(image, cs.Region(segments[0].cls)).numpy(),
                               rtol=1e-5, atol=1e-7)
    assert ex.target.segment == -1 and ex.target.target == segments[0].cls
    # the segment list picks one too
    deliver(ex, ex.heatmap, type="pixel", id=5, x=x, y=y)  # a click on the second segment again
    assert ex.controller.segment == 1
    deliver(ex, ex.target, type="segment", id=6, index=0)
    np.testing.assert_allclose(ex.heatmap.relevance, first, rtol=1e-5, atol=1e-7)
    # the view asks again for its marked pixel when the map changed, to refresh the readout: that is no click ...
    reply = deliver(ex, ex.heatmap, type="pixel", id=7, x=x, y=y)
    assert ex.controller.segment == 0 and reply["value"] == pytest.approx(ex.heatmap.relevance_at(x, y))
    deliver(ex, ex.heatmap, type="pixel", id=8, x=x, y=y)  # ... but asking once more, with the map unchanged, is
    assert ex.controller.segment == 1
    assert all(not view.busy and view.error == "" for view in ex.views)


def test_a_click_on_a_detection_explains_its_score(world, data):
    detector = world.load_model("detector")
    xd = cs.Explainer(detector, output=0, classes=world.classes)
    index = next(i for i in range(len(data)) if len(detect(detector, data.raw_image(i)[None])[0]["scores"]) >= 2)
    image = data[index][0]
    ex = wired(explore(xd, image, segments=detection_segments(detector, world.classes)))
    # no layer given: the last convolution the score's relevance flows through, short of the output's own
    assert ex.concepts.layer == "heatmap.0" and sum(c["relevance"] for c in ex.concepts.concepts) > 0
    found = detect(detector, data.raw_image(index)[None])[0]
    segments = ex.controller.subject.segments
    assert len(segments) == len(found["scores"]) and ex.target.segment == 0
    assert [s["score"] for s in ex.target.segments] == pytest.approx(found["scores"].tolist())
    np.testing.assert_allclose(ex.heatmap.relevance, xd.heatmap(image, detection_output(found, 0)).numpy(),
                               rtol=1e-5, atol=1e-7)
    pick = next(k for k, s in enumerate(segments) if segment_at(segments, (s.box[0] + s.box[2]) // 2,
                                                                (s.box[1] + s.box[3]) // 2) == k and k != 0)
    box = segments[pick].box
    deliver(ex, ex.heatmap, type="pixel", id=1, x=(box[0] + box[2]) // 2, y=(box[1] + box[3]) // 2)
    assert ex.controller.segment == pick
    np.testing.assert_allclose(ex.heatmap.relevance, xd.heatmap(image, detection_output(found, pick)).numpy(),
                               rtol=1e-5, atol=1e-7)


def test_bad_targets_and_segments_are_refused_clearly(xp, segmenter, data, index, world):
    image = data[index][0]
    before = model_state(segmenter)
    wrong = np.zeros((5, 7), bool)
    wrong[1, 1] = True
    with pytest.raises(ValueError, match=r"mask of size \(5, 7\) does not fit the output's grid"):
        explore(xp, image, target=cs.Region(1, wrong))
    with pytest.raises(ValueError, match="mask is empty"):
        explore(xp, image, target=cs.Region(1, np.zeros((64, 64), bool)))
    with pytest.raises(ValueError, match="dense"):
        explore(xp, image, target=cs.Contrast(1, 2))
    ex = wired(explore(xp, image))
    shown = ex.heatmap.relevance.copy()
    count = len(ex.controller.subject.segments)
    with pytest.raises(IndexError, match=f"segment 99 does not exist: this input has {count} segment"):
        ex.select_segment(99)
    reply = deliver(ex, ex.target, type="segment", id=1, index=-1)
    assert reply["type"] == "error" and "segment -1 does not exist" in reply["message"]
    reply = deliver(ex, ex.target, type="contrast", id=2, target=1, versus=2)
    assert reply["type"] == "error" and "contrast" in reply["message"]
    with pytest.raises(ValueError, match="a contrast of two classes explains class logits"):
        ex.set_target(1, versus=2)
    np.testing.assert_array_equal(ex.heatmap.relevance, shown)
    assert ex.controller.segment == 0
    with pytest.raises(TypeError, match="segments must be a function"):
        explore(xp, image, segments=[1, 2])
    with pytest.raises(ValueError, match="this model's output is class logits"):
        explore(cs.Explainer(world.model), image, target=cs.Region(1))
    assert_unchanged(segmenter, before)


def test_a_detector_the_engine_cannot_trace_is_refused_naming_nms():
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                         num_classes=3).eval()
    before = model_state(model)
    with pytest.raises(cs.UntraceableModelError, match="non-maximum suppression inside forward"):
        explore(cs.Explainer(model), torch.randn(3, 64, 64))
    assert_unchanged(model, before)
