"""PerturbationView: what the slider removes is what the explanation ranks first, the probabilities are the model's on
exactly that input (checked against the faithfulness and concept-deletion code), the picture is what the model sees,
the latest position wins, bad input gets clear errors and the model is left unchanged."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import conceptscope as cs
from conceptscope.evaluation import concept_deletion, remove_top
from conceptscope.widgets import PerturbationView
from tests.helpers import assert_unchanged, model_state

LAYER = "features.15"


@pytest.fixture(scope="module")
def sample(world):
    data = world.dataset("test", n=3, seed=31)
    return data[1][0], data.raw_image(1)


def make_view(world, sample, **kwargs):
    image, picture = sample
    settings = dict(picture=picture, classes=world.classes, mean=world.mean, std=world.std) | kwargs
    view = cs.perturb(world.model, image, **settings)
    assert isinstance(view, PerturbationView)
    view.sent = []
    view.send = lambda content, buffers=None: view.sent.append(content)
    assert view.wait(60)
    return view


def deliver(view, **content):
    view._on_message(view, {"id": 1, **content}, [])
    assert view.wait(60)
    return view.sent[-1]


def shown(view):
    return {p["index"]: p["probability"] for p in view.probabilities}


def test_removing_pixels_runs_the_model_on_the_perturbed_input_the_picture_shows(world, sample):
    before = model_state(world.model)
    view = make_view(world, sample, methods=["lrp_epsilon_plus_flat", "saliency"])
    image, picture = sample
    assert view.fraction == 0 and view.removed == 0 and view.total == 64 * 64
    probabilities = torch.softmax(world.model(image[None])[0].detach().double(), 0)
    assert view.target == int(probabilities.argmax())
    assert [p["original"] for p in view.probabilities] == pytest.approx(
        [float(probabilities[p["index"]]) for p in view.probabilities], abs=1e-6)
    assert deliver(view, type="fraction", fraction=0.25) == {"type": "fraction_set", "fraction": 0.25, "id": 1}
    heatmap = cs.methods.attribute(world.model, image, view.target, "lrp_epsilon_plus_flat", mean=world.mean,
                                   std=world.std)
    perturbed, removed = remove_top(image[None], heatmap[None], 0.25)
    expected = torch.softmax(world.model(perturbed)[0].detach().double(), 0)
    assert view.removed == int(removed.sum()) == 1024
    for index, probability in shown(view).items():
        assert probability == pytest.approx(float(expected[index]), abs=1e-5)
    assert shown(view)[view.target] < probabilities[view.target] - 0.05  # the relevant pixels mattered
    seen = np.array(Image.open(io.BytesIO(view.image_png)).convert("RGB"))
    np.testing.assert_array_equal(seen[~removed[0].numpy()], picture[~removed[0].numpy()])
    # the picture shows what the model sees: normalised, it is the perturbed input (up to 8-bit rounding)
    assert float((world.normalize(seen) - perturbed[0]).abs().max()) < 0.6 / 255 / min(world.std)
    deliver(view, type="method", method="saliency")
    saliency = cs.methods.attribute(world.model, image, view.target, "saliency")
    expected = torch.softmax(world.model(remove_top(image[None], saliency[None], 0.25)[0])[0].detach().double(), 0)
    assert shown(view)[view.target] == pytest.approx(float(expected[view.target]), abs=1e-5)
    assert_unchanged(world.model, before)


def test_removing_concepts_equals_concept_deletion(world, sample):
    before = model_state(world.model)
    view = make_view(world, sample, unit="concepts", layer=LAYER)
    assert view.total == 64
    deliver(view, type="fraction", fraction=0.25)
    assert view.removed == 16
    curves = concept_deletion(cs.Explainer(world.model), sample[0], LAYER, [view.target], orders=["relevance"],
                              counts=[0, 16], score="probability", progress=False)
    assert shown(view)[view.target] == pytest.approx(curves.curves["relevance"][0, 1], abs=1e-5)
    assert shown(view)[view.target] < curves.curves["relevance"][0, 0]
    assert view.image_png != make_view(world, sample, unit="concepts", layer=LAYER).image_png  # where they were
    deliver(view, type="unit", unit="pixels")
    assert view.unit == "pixels" and view.total == 64 * 64 and view.removed == 1024
    assert_unchanged(world.model, before)


def test_the_latest_position_wins(world, sample):
    view = make_view(world, sample)
    for number, fraction in enumerate((0.1, 0.5, 0.9, 0.3)):
        view._on_message(view, {"type": "fraction", "id": number, "fraction": fraction}, [])
    assert view.wait(60)
    assert view.fraction == 0.3 and view.removed == round(0.3 * 64 * 64)


@pytest.mark.parametrize("content, error", [
    ({"type": "fraction", "fraction": 1.5}, "fraction must be a number from 0 to 1, got 1.5"),
    ({"type": "fraction", "fraction": -0.1}, "fraction must be a number from 0 to 1"),
    ({"type": "fraction", "fraction": True}, "field 'fraction' must be float; got bool True"),
    ({"type": "fraction", "fraction": "half"}, "field 'fraction' must be float; got str 'half'"),
    ({"type": "method", "method": "rise"}, "method 'rise' is not offered here; choose one of lrp_epsilon_plus_flat"),
    ({"type": "unit", "unit": "voxels"}, "unit must be one of 'pixels', 'concepts', got 'voxels'"),
])
def test_malformed_requests_are_rejected_and_change_nothing(world, sample, content, error):
    view = make_view(world, sample)
    state = (view.fraction, view.method, view.unit, view.image_png)
    reply = deliver(view, **content)
    assert reply["type"] == "error" and error in reply["message"]
    assert (view.fraction, view.method, view.unit, view.image_png) == state


@pytest.mark.parametrize("kwargs, error, message", [
    ({"baseline": "zero"}, ValueError, "baseline must be one of 'mean', 'blur', 'linear'"),
    ({"method": "nope"}, ValueError, "unknown method 'nope'"),
    ({"method": "saliency", "methods": ["rise"]}, ValueError, "method 'saliency' is not among methods"),
    ({"target": 7}, ValueError, "target must be a class index 0..6, got 7"),
    ({"target": True}, ValueError, "target must be a class index"),
    ({"layer": "features.99"}, Exception, "features.99"),
    ({"classes": ["a", "b"]}, ValueError, "classes names 2 classes, the model has 7"),
    ({"unit": "voxels"}, ValueError, "unit must be one of"),
    ({"patch_size": 5}, ValueError, "patch_size 5 does not tile the 64x64 image"),
])
def test_bad_arguments_get_clear_errors(world, sample, kwargs, error, message):
    before = model_state(world.model)
    with pytest.raises(error, match=message):
        view = make_view(world, sample, **kwargs)
        view.set_fraction(0.5)
        assert view.wait(60)
        if view.error:
            raise ValueError(view.error)
    assert_unchanged(world.model, before)


def test_pictures_of_the_wrong_size_and_non_images_are_refused(world, sample):
    with pytest.raises(ValueError, match=r"picture must be \(64, 64\) like the input"):
        cs.perturb(world.model, sample[0], picture=np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="image must be one float model input"):
        cs.perturb(world.model, sample[0][None])
