"""CompareView and its figure: maps and scores equal the methods' and metrics' own, a new target recomputes every
method (latest wins), failures stay in their tile, bad input gets clear errors, the model is left unchanged."""
import io

import numpy as np
import pytest
import torch
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

import conceptscope as cs
from conceptscope.evaluation import localisation
from conceptscope.render import overlay, relevance_to_rgba
from conceptscope.widgets import CompareView
from tests.helpers import assert_unchanged, model_state

METHODS = ["gradient_x_input", "gradcam", "lrp_epsilon_plus_flat"]


@pytest.fixture(scope="module")
def sample(world):
    data = world.dataset("test", n=2, seed=21)
    return data[0][0], data.raw_image(0), data.evidence_mask(0), data.label(0)


def make_view(world, sample, **kwargs):
    image, picture, mask, label = sample
    view = CompareView(world.model, image, METHODS, evidence={label: mask}, picture=picture, classes=world.classes,
                       mean=world.mean, std=world.std, **kwargs)
    view.sent = []
    view.send = lambda content, buffers=None: view.sent.append(content)
    return view


def message(view, **content):
    view._on_message(view, content, [])


def test_tiles_hold_each_method_s_map_and_scores(world, sample):
    before = model_state(world.model)
    image, picture, mask, label = sample
    view = make_view(world, sample, target=label)
    assert view.wait(60)
    assert [t["method"] for t in view.tiles] == METHODS and view.graded and view.target == label
    for tile in view.tiles:
        expected = cs.methods.attribute(world.model, image, label, tile["method"], mean=world.mean, std=world.std)
        assert np.allclose(view.maps[tile["method"]], expected.numpy(), atol=1e-6)
        scores = localisation(expected[None], torch.from_numpy(mask)[None])
        assert tile["scores"] == pytest.approx({k: float(v[0]) for k, v in scores.items()})
        shown = np.asarray(Image.open(io.BytesIO(tile["png"])))
        assert np.array_equal(shown, overlay(picture, relevance_to_rgba(expected.numpy(), "bwr"), 0.6))
        assert tile["seconds"] > 0 and tile["error"] == ""
    _, buffers, _ = _remove_buffers(view.get_state())
    assert len(buffers) >= 1 + len(METHODS)  # the picture and every tile's PNG travel as binary buffers
    assert_unchanged(world.model, before)


def test_a_new_target_recomputes_every_method_and_the_latest_wins(world, sample):
    _, _, _, label = sample
    view = make_view(world, sample, target=label)
    view.wait(60)
    other = (label + 1) % len(world.classes)
    message(view, type="target", id=1, target=other)
    message(view, type="target", id=2, target=label)
    message(view, type="target", id=3, target=other)
    assert view.wait(60)
    assert view.target == other and not view.graded and not view.busy
    assert all(tile["scores"] == {} and tile["png"] for tile in view.tiles)
    expected = cs.methods.attribute(world.model, sample[0], other, "gradcam", mean=world.mean, std=world.std)
    assert np.allclose(view.maps["gradcam"], expected.numpy(), atol=1e-6)
    assert view.sent[-1] == {"type": "target_set", "target": other, "id": 3}


def test_a_failing_method_stays_in_its_tile(world, sample):
    view = make_view(world, sample, options={"gradcam": {"layer": "classifier.0"}})
    view.wait(60)
    tiles = {t["method"]: t for t in view.tiles}
    assert "no spatial extent" in tiles["gradcam"]["error"] and tiles["gradcam"]["png"] == b""
    assert tiles["gradient_x_input"]["png"] and view.error == ""


def test_figure_draws_the_grid_with_scores(world, sample):
    view = make_view(world, sample, target=sample[3])
    figure = view.figure()
    titles = [ax.get_title() for ax in figure.axes if ax.images]
    assert titles[0] == "input" and len(titles) == 1 + len(METHODS)
    assert titles[1] == f"gradient_x_input\nmass_accuracy {view.scores['gradient_x_input']['mass_accuracy']:.2f}"


def test_bad_input_gets_clear_errors(world, sample):
    image, picture, mask, label = sample
    with pytest.raises(ValueError, match="unknown method 'gradcam\\+\\+'; available methods: saliency"):
        CompareView(world.model, image, ["gradcam++"])
    with pytest.raises(ValueError, match="ground-truth mask of class 2 must be a bool array of the input's size"):
        CompareView(world.model, image, METHODS, evidence={2: mask[:32]})
    with pytest.raises(ValueError, match="one float model input"):
        CompareView(world.model, image[None], METHODS)
    view = make_view(world, sample)
    view.wait(60)
    message(view, type="target", id=9, target=99)
    assert view.sent[-1]["type"] == "error" and "not a class" in view.sent[-1]["message"]
    view = cs.compare(world.model, image, ["saliency"])
    assert isinstance(view, CompareView) and view.wait(60) and view.tiles[0]["png"]
