"""Bad input to the engine, the private copies of models and the widgets, tried as a careless user and as a hostile
front end would: every case asserts a specific error (type and message) or a checked correct result, and that the
user's model is left exactly as it was (parameters, buffers, hooks, modes, structure)."""
import copy
import json
import logging
import re

import numpy as np
import pytest
import torch
import traitlets

import conceptscope as cs
from conceptscope.atlas import Atlas
from conceptscope.models.identity import model_digest
from conceptscope.models.private import device_checksum, model_fingerprint
from conceptscope.widgets import (
    CompositionTree,
    ConceptList,
    Controller,
    HeatmapView,
    NeuronGallery,
    ProtocolError,
    SemanticSearch,
    TargetView,
    save_html,
)

from .helpers import assert_unchanged, model_state

LAYER, LINEAR = "features.15", "classifier.0"


@pytest.fixture(scope="module")
def image(data):
    return data[3][0]


@pytest.fixture(scope="module")
def explanation(xp, image):
    return xp.explain(image)


@pytest.fixture(autouse=True)
def model_untouched(world):
    """Every case leaves the user's model as it was."""
    before = model_state(world.model)
    yield
    assert_unchanged(world.model, before)


def raises(error, match, call):
    with pytest.raises(error, match=match):
        call()


def refused_from_view(view, name, value, before, match):
    """The view sent ``name = value``: refused with the validator's message (a trait the view owns) or as a trait the
    view may not set, the kernel's value kept, the reason shown in the view."""
    view.set_state({name: value})
    assert getattr(view, name) == before
    expected = match if name in view._view_sets else f"the view may not set '{name}'"
    assert re.search(expected, view.error), view.error


# --- the Explainer's constructor ----------------------------------------------------------------------------------

class NoWeights(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)


@pytest.mark.parametrize("model, error, match", [
    (None, TypeError, "expected a torch.nn.Module, got NoneType"),
    ("vgg16", TypeError, "expected a torch.nn.Module, got str"),
    (lambda x: x, TypeError, "expected a torch.nn.Module, got function"),
    (torch.zeros(3), TypeError, "expected a torch.nn.Module, got Tensor"),
    (torch.nn.ReLU(), ValueError, "ReLU has no parameters or buffers"),
    (torch.nn.Sequential(), ValueError, "Sequential has no parameters or buffers"),
    (NoWeights(), ValueError, "NoWeights has no parameters or buffers"),
])
def test_explainer_refuses_what_is_not_a_model_with_weights(model, error, match):
    raises(error, match, lambda: cs.Explainer(model))


def test_explainer_refuses_a_model_on_the_meta_device():
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    raises(ValueError, "weights on the meta device .*'0.weight'.*load the weights first", lambda: cs.Explainer(model))


@pytest.mark.parametrize("name, value, error, match", [
    ("cache_size", -1, ValueError, "cache_size must be an integer >= 0; got -1"),
    ("cache_size", 1.5, TypeError, "cache_size must be an integer >= 0; got float 1.5"),
    ("cache_size", True, TypeError, "cache_size must be an integer >= 0; got bool True"),
    ("cache_size", "4", TypeError, "cache_size must be an integer >= 0; got str '4'"),
    ("cache_size", None, TypeError, "cache_size must be an integer >= 0; got NoneType"),
    ("memory_budget", 0, ValueError, "memory_budget must be an integer >= 1; got 0"),
    ("memory_budget", -(1 << 20), ValueError, "memory_budget must be an integer >= 1"),
    ("memory_budget", 1e9, TypeError, "memory_budget must be an integer >= 1 or None; got float"),
    ("memory_budget", False, TypeError, "memory_budget must be an integer >= 1 or None; got bool"),
    ("output", True, TypeError, "output must be None, an index, a key or a function"),
    ("output", 1.5, TypeError, "output must be None, an index, a key or a function"),
    ("output", [0], TypeError, "output must be None, an index, a key or a function"),
    ("composite", "no_such_composite", ValueError, "unknown composite 'no_such_composite'; use one of"),
    ("composite", 3, ValueError, "unknown composite 3"),
    ("concept", "channel", TypeError, r"concept must be a concept notion such as ChannelConcept\(\).*got str"),
])
def test_explainer_options_are_checked(world, name, value, error, match):
    raises(error, match, lambda: cs.Explainer(world.model, **{name: value}))


@pytest.mark.parametrize("mean, std, match", [
    ([0.5, 0.5], [0.2, 0.2, 0.2], r"mean must be 3 finite numbers .*got \[0.5, 0.5\]"),
    ("abc", [0.2, 0.2, 0.2], "mean must be 3 finite numbers"),
    ([0.5, 0.5, float("nan")], [0.2, 0.2, 0.2], "mean must be 3 finite numbers"),
    ([0.5] * 3, [0, 0, 0], r"std must be 3 finite numbers \(one per input channel, each > 0"),
    ([0.5] * 3, [0.2, -0.2, 0.2], "std must be 3 finite numbers"),
    ([0.5] * 3, None, "std must be 3 finite numbers"),
])
def test_the_box_rule_checks_the_normalisation(world, mean, std, match):
    raises(ValueError, match, lambda: cs.Explainer(world.model, "epsilon_gamma_box", mean=mean, std=std))


@pytest.mark.parametrize("name, value", [("cache_size", 0), ("cache_size", np.int64(2)), ("memory_budget", None),
                                         ("memory_budget", 1 << 24)])
def test_explainer_accepts_valid_edge_options_and_explains_the_same(world, xp, image, name, value):
    heatmap = cs.Explainer(world.model, **{name: value}).heatmap(image)
    assert torch.allclose(heatmap, xp.heatmap(image), atol=1e-6)


# --- images -------------------------------------------------------------------------------------------------------

def _nan(image):
    bad = image.clone()
    bad[1, 5, 7] = float("nan")
    return bad


def _inf(image):
    bad = image.clone()
    bad[0, 0, 0] = float("inf")
    return bad


def _neg_inf(image):
    bad = image.clone()
    bad[:, 10:12, 10:12] = -float("inf")
    return bad


BAD_IMAGES = [
    ("0-d tensor", lambda im: torch.tensor(1.0), ValueError, "got a 0-d tensor"),
    ("meta tensor", lambda im: torch.empty(3, 64, 64, device="meta"), ValueError, "meta device and hold no values"),
    ("uint8 pixels", lambda im: (im * 50).clamp(0, 255).to(torch.uint8), TypeError, "expected float images"),
    ("int64 pixels", lambda im: im.long(), TypeError, "got dtype torch.int64"),
    ("bool pixels", lambda im: im > 0, TypeError, "got dtype torch.bool"),
    ("channels last", lambda im: im.permute(1, 2, 0), ValueError, r"channels last\? use images.permute"),
    ("grey image", lambda im: im[:1], ValueError, r"expected inputs of shape \(B, 3, H, W\)"),
    ("1-d vector", lambda im: im.flatten(), ValueError, r"got shape \(12288,\)"),
    ("5-d batch", lambda im: im[None, None], ValueError, r"got shape \(1, 1, 3, 64, 64\)"),
    ("list", lambda im: im.tolist(), TypeError, "got list"),
    ("None", lambda im: None, TypeError, "got NoneType"),
    ("path string", lambda im: "cat.png", TypeError, "got str"),
    ("empty batch", lambda im: im[None][:0], ValueError, r"the batch is empty \(shape \(0, 3, 64, 64\)\)"),
    ("too small to pool", lambda im: im[:, :2, :2], ValueError, r"ShapesVGG cannot run on an input of shape "
                                                                  r"\(1, 3, 2, 2\).*Output size is too small"),
    ("NaN pixel", _nan, ValueError, "1 non-finite .* values.*Replace or drop those pixels"),
    ("inf pixel", _inf, ValueError, "1 non-finite .* values"),
    ("-inf patch", _neg_inf, ValueError, "12 non-finite .* values"),
]
CALLS = {
    "heatmap": lambda xp, im: xp.heatmap(im),
    "explain": lambda xp, im: xp.explain(im, layers=LAYER),
    "attribute": lambda xp, im: xp.attribute(im, layers=[LAYER]),
    "forward": lambda xp, im: xp.forward(im, LAYER),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("what, make, error, match", BAD_IMAGES, ids=[case[0] for case in BAD_IMAGES])
def test_bad_images_are_refused_by_every_entry_point(xp, image, call, what, make, error, match):
    raises(error, match, lambda: CALLS[call](xp, make(image)))


def test_a_numpy_image_is_explained_as_the_tensor(xp, image):
    assert torch.equal(xp.heatmap(image.numpy()), xp.heatmap(image))


def test_a_float64_image_is_cast_to_the_models_dtype(xp, image):
    assert torch.allclose(xp.heatmap(image.double()), xp.heatmap(image), atol=1e-5)


# --- layers ---------------------------------------------------------------------------------------------------------

BAD_LAYERS = [
    ("unknown", "features.99", KeyError, "model has no layer 'features.99'; concept layers are: features.0"),
    ("empty name", "", KeyError, "model has no layer ''"),
    ("index", 15, TypeError, "layers must be a layer name or a list of layer names"),
    ("None in list", [LAYER, None], TypeError, "layers must be a layer name or a list of layer names"),
    ("nested", [[LAYER]], TypeError, "layers must be a layer name or a list of layer names"),
    ("bytes", b"features.15", TypeError, "layers must be a layer name or a list"),
    ("module", torch.nn.ReLU(), TypeError, "layers must be a layer name or a list"),
]


@pytest.mark.parametrize("call", ["explain", "attribute", "forward"])
@pytest.mark.parametrize("what, layers, error, match", BAD_LAYERS, ids=[case[0] for case in BAD_LAYERS])
def test_bad_layers_are_refused(xp, image, call, what, layers, error, match):
    calls = {"explain": lambda: xp.explain(image, layers=layers),
             "attribute": lambda: xp.attribute(image, layers=layers),
             "forward": lambda: xp.forward(image, layers)}
    raises(error, match, calls[call])


TWO_LAYERS = ("features.11", LAYER)


@pytest.mark.parametrize("layers", [TWO_LAYERS, list(TWO_LAYERS), dict.fromkeys(TWO_LAYERS),
                                    dict.fromkeys(TWO_LAYERS).keys(), set(TWO_LAYERS), iter(TWO_LAYERS)],
                         ids=["tuple", "list", "dict", "keys", "set", "iterator"])
def test_layers_as_any_iterable_of_names_are_recorded(xp, image, layers):
    assert set(xp.attribute(image, layers=layers, heatmaps=False).relevances) == {"features.11", LAYER}


def test_heatmaps_flag_must_be_a_bool(xp, image):
    raises(TypeError, "heatmaps must be True or False; got int", lambda: xp.attribute(image, heatmaps=1))


def test_attribute_without_heatmaps_gives_the_same_layer_relevance(xp, image):
    full = xp.attribute(image[None], layers=[LAYER])
    cheap = xp.attribute(image[None], layers=[LAYER], heatmaps=False)
    assert cheap.heatmaps is None
    assert torch.allclose(cheap.relevances[LAYER], full.relevances[LAYER], atol=1e-6)


# --- rankings: k and regions ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("k, error, match", [
    (True, TypeError, "k must be an integer >= 1; got bool True"),
    (False, TypeError, "k must be an integer >= 1; got bool False"),
    (0, ValueError, "k must be an integer >= 1; got 0"),
    (-1, ValueError, "k must be an integer >= 1; got -1"),
    (1.5, TypeError, "k must be an integer >= 1; got float 1.5"),
    (2.0, TypeError, "k must be an integer >= 1; got float 2.0"),
    ("3", TypeError, "k must be an integer >= 1; got str '3'"),
    (None, TypeError, "k must be an integer >= 1; got NoneType None"),
    (torch.tensor(2.0), TypeError, "k must be an integer >= 1; got Tensor"),
    ([3], TypeError, "k must be an integer >= 1; got list"),
])
def test_bad_k_is_refused(explanation, k, error, match):
    raises(error, match, lambda: explanation.top_concepts(LAYER, k=k))


@pytest.mark.parametrize("k", [np.int64(3), torch.tensor(3), 3])
def test_integer_k_of_any_kind_ranks_the_same(explanation, k):
    assert [s.channel for s in explanation.top_concepts(LAYER, k=k)] == \
        explanation.concept_relevance(LAYER).topk(3).indices.tolist()


def test_k_beyond_the_channels_ranks_every_channel(explanation):
    scores = explanation.top_concepts(LAYER, k=2 ** 70)
    assert len(scores) == 64 and sorted(s.channel for s in scores) == list(range(64))


def _mask(value=False, shape=(64, 64)):
    return np.full(shape, value)


@pytest.mark.parametrize("region, error, match", [
    (_mask(False), ValueError, r"region selects no pixel \(the mask is all False\)"),
    (torch.zeros(64, 64, dtype=torch.bool), ValueError, "region selects no pixel"),
    (_mask(True, (32, 32)), ValueError, r"region must be a boolean mask of the input's size \(64, 64\), got shape "
                                        r"\(32, 32\)"),
    (_mask(True, (64,)), ValueError, r"got shape \(64,\)"),
    (_mask(True, (1, 64, 64)), ValueError, r"got shape \(1, 64, 64\)"),
    (np.ones((64, 64)), TypeError, "region must be a boolean mask, got dtype torch.float64"),
    (np.ones((64, 64), dtype=np.int32), TypeError, "got dtype torch.int32"),
    ("everything", TypeError, "region must be a boolean mask .* got str"),
    (5, TypeError, "got int"),
    ([[True, False], [False]], TypeError, "region must be a boolean mask of the input's size"),
    ([0, 0, 10, 10], ValueError, r"got shape \(4,\)"),
])
def test_bad_regions_are_refused(explanation, region, error, match):
    raises(error, match, lambda: explanation.top_concepts(LAYER, region=region))


def test_a_region_on_a_layer_without_space_is_refused(explanation):
    raises(ValueError, "has no spatial extent", lambda: explanation.top_concepts(LINEAR, region=_mask(True)))


def test_a_full_region_ranks_as_no_region(explanation):
    full = explanation.concept_relevance(LAYER, _mask(True))
    assert torch.allclose(full, explanation.concept_relevance(LAYER), atol=1e-6)


def test_a_region_counts_only_its_relevance(explanation):
    left, right = _mask(False), _mask(False)
    left[:, :32], right[:, 32:] = True, True
    both = explanation.concept_relevance(LAYER, left) + explanation.concept_relevance(LAYER, right)
    assert torch.allclose(both, explanation.concept_relevance(LAYER), atol=1e-5)


@pytest.mark.parametrize("layer, error, match", [
    ("features.99", KeyError, "was not recorded in this explanation"),
    (15, TypeError, "layer must be a layer name"),
    ([LAYER], TypeError, "layer must be a layer name"),
    (None, TypeError, "layer must be a layer name"),
])
def test_bad_ranking_layers_are_refused(explanation, layer, error, match):
    raises(error, match, lambda: explanation.top_concepts(layer))


# --- channel ids ----------------------------------------------------------------------------------------------------

BAD_CHANNELS = [
    ("float", [1.0], TypeError, r"must be integers in 0..63 .*got \[1.0\]"),
    ("float scalar", 2.5, TypeError, "must be integers in 0..63"),
    ("string", ["1"], TypeError, r"got \['1'\]"),
    ("bare string", "12", TypeError, "got str '12'"),
    ("ragged", [[1], [2, 3]], TypeError, r"got \[\[1\], \[2, 3\]\]"),
    ("nested", [[1, 2]], TypeError, "must be integers"),
    ("huge", [2 ** 70], ValueError, r"channel ids \[1180591620717411303424\] are out of range"),
    ("bool", [True], TypeError, r"got \[True\]"),
    ("bare bool", True, TypeError, "got bool True"),
    ("negative", [-1], ValueError, r"channel ids \[-1\] are out of range .* \(valid ids: 0..63"),
    ("one past", [64], ValueError, r"channel ids \[64\] are out of range"),
    ("empty", [], ValueError, "no channels given for layer 'features.15'"),
    ("empty tensor", torch.tensor([], dtype=torch.long), ValueError, "no channels given"),
    ("float tensor", torch.tensor([1.0, 2.0]), TypeError, "must be integers"),
    ("bool tensor", torch.tensor([True, False]), TypeError, "must be integers"),
    ("2-d tensor", torch.tensor([[1, 2]]), ValueError, r"got an array of shape \(1, 2\)"),
    ("float array", np.array([1.0]), TypeError, "must be integers"),
    ("None", None, TypeError, "got NoneType None"),
    ("dict", {1: 2}, TypeError, "must be integers"),
]
CHANNEL_CALLS = {
    "conditional_heatmaps": lambda xp, e, im, ids: e.conditional_heatmaps(LAYER, ids),
    "conditional_heatmap": lambda xp, e, im, ids: e.conditional_heatmap({LAYER: ids}),
    "explainer": lambda xp, e, im, ids: xp.conditional_heatmaps(im, LAYER, ids),
}


@pytest.mark.parametrize("call", CHANNEL_CALLS)
@pytest.mark.parametrize("what, ids, error, match", BAD_CHANNELS, ids=[case[0] for case in BAD_CHANNELS])
def test_bad_channel_ids_are_refused(xp, explanation, image, call, what, ids, error, match):
    raises(error, match, lambda: CHANNEL_CALLS[call](xp, explanation, image, ids))


@pytest.mark.parametrize("ids", [[3, 5], (3, 5), np.array([3, 5]), torch.tensor([3, 5]), [np.int64(3), 5],
                                 [torch.tensor(3), 5]])
def test_channel_ids_of_any_integer_kind_give_the_same_heatmaps(explanation, ids):
    expected = explanation.conditional_heatmaps(LAYER, [3, 5])
    assert torch.equal(explanation.conditional_heatmaps(LAYER, ids), expected)


def test_a_single_channel_id_is_one_heatmap(explanation):
    assert torch.equal(explanation.conditional_heatmaps(LAYER, 3), explanation.conditional_heatmaps(LAYER, [3]))


@pytest.mark.parametrize("chunk_size, error, match", [
    (0, ValueError, "chunk_size must be an integer >= 1; got 0"),
    (-1, ValueError, "chunk_size must be an integer >= 1; got -1"),
    (0.5, TypeError, "chunk_size must be an integer >= 1 or None; got float 0.5"),
    (True, TypeError, "chunk_size must be an integer >= 1 or None; got bool"),
    ("2", TypeError, "got str '2'"),
])
def test_bad_chunk_sizes_are_refused(explanation, chunk_size, error, match):
    raises(error, match, lambda: explanation.conditional_heatmaps(LAYER, [1, 2], chunk_size=chunk_size))


@pytest.mark.parametrize("chunk_size", [1, 2, 2 ** 40])
def test_any_chunk_size_gives_the_same_heatmaps(explanation, chunk_size):
    expected = explanation.conditional_heatmaps(LAYER, [1, 2, 3])
    assert torch.allclose(explanation.conditional_heatmaps(LAYER, [1, 2, 3], chunk_size=chunk_size), expected,
                          atol=1e-6)


@pytest.mark.parametrize("conditions, error, match", [
    ([LAYER, 1], TypeError, r"conditions must be a dict \{layer: \[channels\]\}; got list"),
    ("features.15", TypeError, "conditions must be a dict"),
    ({}, ValueError, "conditions is empty"),
    ({"features.99": [1]}, KeyError, "was not recorded"),
    ({LAYER: [1], "classifier.2": []}, ValueError, "no channels given for layer 'classifier.2'"),
    ({LAYER: [1], "classifier.2": [7]}, ValueError, r"channel ids \[7\] are out of range for layer 'classifier.2'"),
    ({LAYER: [99]}, ValueError, r"channel ids \[99\] are out of range"),
])
def test_bad_condition_sets_are_refused(explanation, conditions, error, match):
    raises(error, match, lambda: explanation.conditional_heatmap(conditions))


def test_explainer_conditions_must_be_a_dict(xp, image):
    raises(TypeError, "conditions must be a dict", lambda: xp.conditional_heatmap(image, [(LAYER, 1)]))


# --- composition ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, error, match", [
    ({"top": 0}, ValueError, "top must be an integer >= 1; got 0"),
    ({"top": -1}, ValueError, "top must be an integer >= 1; got -1"),
    ({"top": True}, TypeError, "top must be an integer >= 1; got bool"),
    ({"top": 2.5}, TypeError, "top must be an integer >= 1; got float"),
    ({"depth": -1}, ValueError, "depth must be an integer >= 0; got -1"),
    ({"depth": 1.0}, TypeError, "depth must be an integer >= 0; got float"),
    ({"depth": None}, TypeError, "depth must be an integer >= 0; got NoneType"),
    ({"channel": 64}, ValueError, r"channel ids \[64\] are out of range"),
    ({"channel": -1}, ValueError, r"channel ids \[-1\] are out of range"),
    ({"channel": 1.0}, TypeError, "must be integers"),
    ({"channel": "1"}, TypeError, "must be integers"),
    ({"layer": 15}, TypeError, "layer must be a layer name"),
    ({"layer": "features.99"}, KeyError, "model has no layer 'features.99'"),
])
def test_bad_composition_arguments_are_refused(xp, image, options, error, match):
    arguments = {"layer": LAYER, "channel": 0, **options}
    raises(error, match, lambda: xp.composition(image, **arguments))


def test_depth_zero_expands_nothing_and_top_limits_the_children(xp, image):
    assert not xp.composition(image, LAYER, 0, depth=0).expanded
    root = xp.composition(image, LAYER, 0, depth=1, top=3)
    assert len(root.children) == 3 and all(not child.expanded for child in root.children)


# --- outputs that are not one logit vector per image -----------------------------------------------------------------

class PerPixel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x).flatten(2).transpose(1, 2)


@pytest.mark.parametrize("model, match", [
    (PerPixel(), r"output has shape \(1, 5, 8, 8\): a dense \(e.g. per-pixel\) output needs a target .*cs.Region"),
    (Tokens(), r"output has shape \(1, 64, 4\): a dense .*cs.Output\(index\) for one element"),
])
def test_outputs_with_more_than_a_logit_vector_are_refused(model, match):
    image = torch.randn(3, 8, 8)
    before = model_state(model)
    raises(ValueError, match, lambda: cs.Explainer(model).heatmap(image))
    assert_unchanged(model, before)


# --- non-finite results -----------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::conceptscope.CanonizationWarning")  # merging BatchNorms in float16 rounds
def test_half_precision_on_the_cpu_names_the_dtype(world, image):
    model = copy.deepcopy(world.model).half()
    raises(cs.RelevanceError, "runs in torch.float16 on cpu.*model.float", lambda: cs.Explainer(model).heatmap(image))


def test_non_finite_logits_name_the_cause(world, image):
    model = copy.deepcopy(world.model)
    with torch.no_grad():
        model.classifier[2].bias[0] = float("inf")
    raises(cs.RelevanceError, "produced non-finite logits", lambda: cs.Explainer(model).heatmap(image))


# --- the explained model is always the current model -----------------------------------------------------------------

def _first_conv(model):
    return model.features[0].weight


def _data_mul(model):
    _first_conv(model).data.mul_(1.5)


def _data_assign(model):
    _first_conv(model).data = _first_conv(model).data.flip(0).clone()


def _data_item(model):
    _first_conv(model).data[0, 0, 0, 0] += 0.25


def _numpy_edit(model):
    _first_conv(model).detach().numpy()[1] *= -1


def _permute_in_place(model):
    weight = model.features[4].weight.data
    weight.copy_(weight.roll(1, 0))


def _vector_to_parameters(model):
    vector = torch.nn.utils.parameters_to_vector(model.parameters())
    torch.nn.utils.vector_to_parameters(vector * 0.9, model.parameters())


def _load_state_dict(model):
    state = {name: t * 1.1 if t.is_floating_point() else t for name, t in model.state_dict().items()}
    model.load_state_dict(state)


def _no_grad_in_place(model):
    with torch.no_grad():
        model.classifier[0].weight.add_(0.05)


def _buffer_edit(model):
    model.features[1].running_mean.data += 0.5


def _relu_to_identity(model):
    model.features[13] = torch.nn.Identity()


def _replace_conv(model):
    old = model.features[15]
    new = torch.nn.Conv2d(64, 64, 3, padding=1)
    with torch.no_grad():
        new.weight.copy_(old.weight.flip(0))
        new.bias.copy_(old.bias.flip(0))
    model.features[15] = new


def _new_parameter_object(model):
    model.classifier[2].bias = torch.nn.Parameter(model.classifier[2].bias.detach() + 1.0)


def _pool_setting(model):
    model.features[3].kernel_size, model.features[3].stride = 4, 4


def _double(model):
    model.double()


CHANGES = [_data_mul, _data_assign, _data_item, _numpy_edit, _permute_in_place, _vector_to_parameters,
           _load_state_dict, _no_grad_in_place, _buffer_edit, _relu_to_identity, _replace_conv, _new_parameter_object,
           _pool_setting, _double]


@pytest.mark.filterwarnings("ignore::conceptscope.CanonizationWarning")  # some changed weights amplify rounding
@pytest.mark.parametrize("change", CHANGES, ids=[f.__name__[1:] for f in CHANGES])
def test_every_change_of_the_model_is_followed(world, image, change):
    model = copy.deepcopy(world.model)
    explainer = cs.Explainer(model)
    before = explainer.heatmap(image)
    generation, digest = explainer.generation, explainer.weights_digest()
    change(model)
    after = explainer.heatmap(image)
    fresh = cs.Explainer(copy.deepcopy(model)).heatmap(image)
    assert explainer.generation == generation + 1
    assert torch.equal(after, fresh), "the explanation is not of the changed model"
    assert after.dtype != before.dtype or not torch.equal(after, before)
    if change not in (_relu_to_identity, _pool_setting):  # a module change keeps the weights
        assert explainer.weights_digest() == model_digest(model) != digest


@pytest.mark.parametrize("action", [
    lambda m: m.train(),
    lambda m: m.requires_grad_(False),
    lambda m: m.register_forward_hook(lambda *a: None),
    lambda m: m(torch.randn(2, 3, 64, 64)),
    lambda m: m.load_state_dict(m.state_dict()),
], ids=["train mode", "requires_grad", "hook", "forward", "same weights loaded"])
def test_what_does_not_change_the_explanation_keeps_the_copy(world, image, action):
    model = copy.deepcopy(world.model)
    explainer = cs.Explainer(model)
    before = explainer.heatmap(image)
    generation = explainer.generation
    action(model)
    model.eval()
    assert torch.equal(explainer.heatmap(image), before)
    assert explainer.generation == generation


def test_the_fingerprint_sees_a_one_ulp_edit_anywhere(world):
    model = copy.deepcopy(world.model)
    before = model_fingerprint(model)
    weight = model.features[11].weight.data.view(-1)
    weight[12345] = torch.nextafter(weight[12345], torch.tensor(10.0))
    assert model_fingerprint(model) != before


def test_the_device_checksum_sees_every_one_word_edit_and_every_swap():
    values = torch.randn(64)
    before = device_checksum(values)
    for i in range(64):
        edited = values.clone()
        edited[i] = torch.nextafter(edited[i], torch.tensor(10.0))
        assert device_checksum(edited) != before
        for j in range(i + 1, 64):
            swapped = values.clone()
            swapped[i], swapped[j] = values[j], values[i]
            assert device_checksum(swapped) != before


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.bool,
                                   torch.complex64, torch.int64])
def test_the_device_checksum_sees_edits_of_every_dtype(dtype):
    values = (torch.arange(300) % 2 + torch.arange(300) % 5 - 2).to(dtype)
    edited = values.clone()
    edited[150] = values[151]
    assert values[150] != values[151] and device_checksum(edited) != device_checksum(values)
    assert device_checksum(values.clone()) == device_checksum(values)


def test_a_cached_explanation_is_not_served_after_a_change(world, image):
    model = copy.deepcopy(world.model)
    explainer = cs.Explainer(model)
    first = explainer.explain(image)
    assert explainer.explain(image) is first
    _data_mul(model)
    second = explainer.explain(image)
    assert second is not first and not torch.allclose(second.heatmap, first.heatmap)


def test_an_atlas_is_stamped_with_the_weights_it_was_computed_with(world, data, tmp_path):
    model = copy.deepcopy(world.model)
    explainer = cs.Explainer(model)
    explainer.heatmap(data[0][0])  # the copy is built now ...
    _data_mul(model)  # ... and the model changed through .data afterwards
    atlas = Atlas.build(explainer, data[:4] if isinstance(data, list) else [data[i] for i in range(4)], [LAYER],
                        tmp_path / "atlas", k=2, batch_size=4, progress=False)
    assert atlas.manifest["identity"]["model"]["digest"] == model_digest(model)
    fresh = cs.Explainer(copy.deepcopy(model))
    expected = fresh.attribute(torch.stack([data[i][0] for i in range(4)]), [data[i][1] for i in range(4)],
                               [LAYER], heatmaps=False).relevances[LAYER].flatten(2).sum(2)
    stored, indices = atlas.top(LAYER, 0, "relevance")[1], atlas.top(LAYER, 0, "relevance")[0]
    assert torch.allclose(torch.as_tensor(stored).float(), expected[torch.as_tensor(indices), 0], atol=1e-5)


# --- widgets: the controller --------------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments, error, match", [
    ({"explainer": "model"}, TypeError, "explainer must be a conceptscope Explainer; got str"),
    ({"classes": ["a", "b"]}, ValueError, "classes names 2 classes, but the model has 7 outputs"),
    ({"classes": [str(i) for i in range(8)]}, ValueError, "classes names 8 classes, but the model has 7"),
    ({"classes": "abcdefg"}, TypeError, "classes must be a list of class names; got str"),
    ({"classes": 7}, TypeError, "classes must be a list of class names; got int"),
    ({"cache_size": -1}, ValueError, "cache_size must be an integer >= 0"),
    ({"target": True}, ValueError, "target must be a class index, a Contrast of two or None; got True"),
    ({"target": 9, "classes": list("abcdefg")}, ValueError, r"target 9 is not a class \(0..6\)"),
    ({"image": torch.zeros(64, 64)}, ValueError, r"image must be a float tensor \(C, H, W\)"),
    ({"image": torch.zeros(3, 64, 64, dtype=torch.uint8)}, ValueError, "image must be a float tensor"),
    ({"picture": np.zeros((32, 32, 3), np.uint8)}, ValueError, r"the picture \(32x32\) must have the model input's "),
    ({"picture": np.zeros((64, 64, 3))}, ValueError, r"image must be a uint8 array of shape \(H, W, 3\)"),
])
def test_bad_controller_arguments_are_refused(xp, image, arguments, error, match):
    arguments = {"explainer": xp, "image": image, **arguments}
    raises(error, match, lambda: Controller(**arguments))


def test_the_controller_forgets_results_of_a_changed_model(world, image):
    model = copy.deepcopy(world.model)
    controller = Controller(cs.Explainer(model), image)
    before = controller.conditional(LAYER, [3])[0]
    _data_mul(model)
    after = controller.conditional(LAYER, [3])[0]
    expected = cs.Explainer(copy.deepcopy(model)).conditional_heatmaps(image, LAYER, [3])[0].numpy()
    assert np.array_equal(after, expected) and not np.allclose(after, before)


def test_every_view_of_an_explorer_follows_a_changed_model(world, image):
    model = copy.deepcopy(world.model)
    explorer = cs.explore(cs.Explainer(model), image)
    assert explorer.wait(60)
    explorer.select(LAYER, 3)
    assert explorer.wait(60)
    _data_mul(model)
    explorer.select(LAYER, 5)  # the first request after the change: every view recomputes, not only this one
    assert explorer.wait(60)
    fresh = cs.Explainer(copy.deepcopy(model))
    assert np.array_equal(explorer.heatmap.relevance, fresh.heatmap(image).numpy())
    assert np.array_equal(explorer.heatmap.concept_relevance,
                          fresh.conditional_heatmaps(image, LAYER, [5])[0].numpy())
    ranking = [s.channel for s in fresh.explain(image).top_concepts(explorer.concepts.layer, explorer.concepts.k)]
    assert [c["channel"] for c in explorer.concepts.concepts] == ranking
    assert (explorer.tree.tree["layer"], explorer.tree.tree["channel"]) == (LAYER, 5)
    assert explorer.tree.tree["relevance"] == pytest.approx(float(fresh.explain(image).concept_relevance(LAYER)[5]))


# --- widgets: synced state, from Python and from the view ---------------------------------------------------------

@pytest.fixture
def heatmap(image):
    view = HeatmapView(np.zeros((64, 64, 3), np.uint8), np.random.default_rng(0).normal(size=(64, 64)))
    view.sent, view.states = [], []
    view.send = lambda content, buffers=None: view.sent.append(content)
    view.send_state = lambda key=None: view.states.append(key)
    return view


@pytest.fixture(scope="module")
def concepts(xp, image):
    view = ConceptList(xp, image, layer=LAYER, k=4)
    assert view._worker.wait_idle(30)
    return view


BAD_BOXES = [
    ([-5, -5, 1000, 1000], "region box .* is empty or outside the 64x64 image"),
    ([10, 10, 5, 20], r"region box \[10, 10, 5, 20\] is empty"),
    ([10, 10, 10, 20], "is empty"),
    ([0, 0, 65, 64], "outside the 64x64 image"),
    ([1, 2, 3], r"region box must be \[x0, y0, x1, y1\] of 4 integers"),
    ([0, 0, 4.5, 4], "expected an int, not the float 4.5"),
    ([0, 0, True, 4], "of 4 integers"),
    ([0, 0, "4", 4], "expected an int, not the str '4'"),
    ([0, 0, 4, 4, 4], "of 4 integers"),
]


@pytest.mark.parametrize("box, match", BAD_BOXES)
def test_a_bad_region_set_from_python_is_refused(heatmap, box, match):
    heatmap.region = [1, 1, 5, 5]
    raises(traitlets.TraitError, match, lambda: setattr(heatmap, "region", box))
    assert heatmap.region == [1, 1, 5, 5]


@pytest.mark.parametrize("box, match", BAD_BOXES)
def test_a_bad_region_from_the_view_is_reverted_and_shown(heatmap, box, match):
    heatmap.region = [1, 1, 5, 5]
    heatmap.states.clear()
    heatmap.set_state({"region": box})
    assert heatmap.region == [1, 1, 5, 5] and re.search(match, heatmap.error)
    assert heatmap.error.startswith("region: ")
    assert heatmap.states[-1] == "region"  # the kernel's value goes back to the view


@pytest.mark.parametrize("name, value, match", [
    ("opacity", -0.1, r"opacity must be a number in \[0, 1\]; got -0.1"),
    ("opacity", 1.5, "opacity must be a number in"),
    ("opacity", True, r"opacity must be a number in \[0, 1\]; got bool True"),
    ("opacity", "0.5", "opacity"),
    ("colormap", "jet!", "colormap"),
    ("colormap", None, "colormap"),
    ("show", "concept", "no concept heatmap to show yet"),
    ("show", "both", "show"),
])
def test_bad_heatmap_state_is_refused_from_python_and_from_the_view(heatmap, name, value, match):
    before = getattr(heatmap, name)
    raises(traitlets.TraitError, match, lambda: setattr(heatmap, name, value))
    refused_from_view(heatmap, name, value, before, match)


def test_a_good_value_from_the_view_is_taken(heatmap):
    heatmap.set_state({"region": [2, 3, 10, 12], "opacity": 0.25})
    assert heatmap.region == [2, 3, 10, 12] and heatmap.opacity == 0.25 and heatmap.error == ""


@pytest.mark.parametrize("name, value, match", [
    ("k", 0, "k must be an integer >= 1; got 0"),
    ("k", -3, "k must be an integer >= 1; got -3"),
    ("k", True, "k must be an integer >= 1; got bool"),
    ("k", 2.5, "k"),
    ("region", [-5, -5, 1000, 1000], "empty or outside the 64x64 image"),
    ("region", [30, 30, 10, 10], "is empty"),
    ("region", [1, 2], "of 4 integers"),
    ("layer", "features.99", "unknown layer 'features.99'"),
    ("selected", {"layer": LAYER, "channel": 64}, r"channel 64 is out of range for layer 'features.15' \(0..63\)"),
    ("selected", {"layer": "nope", "channel": 1}, "unknown layer 'nope'"),
    ("selected", {"layer": LAYER}, "selected must be"),
    ("selected", {"layer": LAYER, "channel": True}, "out of range"),
])
def test_bad_concept_list_state_is_refused(concepts, name, value, match):
    before = getattr(concepts, name)
    raises(traitlets.TraitError, match, lambda: setattr(concepts, name, value))
    refused_from_view(concepts, name, value, before, match)
    concepts.error = ""


@pytest.mark.parametrize("name, value", [
    ("concepts", [{"layer": LAYER, "channel": 0, "relevance": 1e9, "share": 1.0, "thumbnail": b""}]),
    ("layers", ["fake"]),
    ("layer", "features.0"),
    ("selected", {"layer": LAYER, "channel": 1}),
    ("busy", True),
])
def test_the_view_may_not_set_what_python_computes(concepts, name, value):
    before = getattr(concepts, name)
    concepts.set_state({name: value})
    assert getattr(concepts, name) == before and f"the view may not set '{name}' (it sets only: k, region)" in \
        concepts.error
    concepts.error = ""


@pytest.mark.parametrize("name, value", [("image_png", b"not a png"), ("heatmap_png", b""), ("concept_label", "x"),
                                         ("colormaps", ["evil"])])
def test_the_heatmap_view_may_set_only_its_controls(heatmap, name, value):
    before = getattr(heatmap, name)
    heatmap.set_state({name: value})
    assert getattr(heatmap, name) == before
    assert heatmap.error == (f"{name}: the view may not set {name!r} (it sets only: colormap, opacity, overlay, "
                             "region, show)")


@pytest.mark.parametrize("value, match", [("lime", r"selected must be '' or one of the methods shown \(saliency, "
                                                     r"gradcam\); got 'lime'"), (3, "expected a unicode string")])
def test_a_compare_view_selects_only_a_shown_method(world, image, value, match):
    view = cs.compare(world.model, image, ["saliency", "gradcam"], mean=world.mean, std=world.std)
    assert view.wait(60)
    raises(traitlets.TraitError, match, lambda: setattr(view, "selected", value))
    refused_from_view(view, "selected", value, "", match)
    view.set_state({"selected": "gradcam"})
    assert view.selected == "gradcam"


def test_a_region_from_the_view_ranks_only_inside_it(concepts, explanation):
    concepts.set_state({"region": [0, 0, 32, 64]})
    assert concepts._worker.wait_idle(30)
    mask = _mask(False)
    mask[:, :32] = True
    expected = [s.channel for s in explanation.top_concepts(LAYER, 4, mask)]
    assert [c["channel"] for c in concepts.concepts] == expected
    concepts.set_state({"region": [], "k": 2})
    assert concepts._worker.wait_idle(30)
    assert [c["channel"] for c in concepts.concepts] == [s.channel for s in explanation.top_concepts(LAYER, 2)]


@pytest.mark.parametrize("name, value, match", [
    ("k", 0, "k must be an integer >= 1"),
    ("k", False, "k must be an integer >= 1; got bool"),
    ("target", 7, r"target 7 is not a class \(0..6"),
    ("target", -2, "target -2 is not a class"),
    ("target", True, "target True is not a class"),
])
def test_bad_target_view_state_is_refused(xp, image, name, value, match):
    view = TargetView(xp, image)
    assert view._worker.wait_idle(30)
    before = getattr(view, name)
    raises(traitlets.TraitError, match, lambda: setattr(view, name, value))
    refused_from_view(view, name, value, before, match)


@pytest.mark.parametrize("name, value, match", [
    ("top", 0, "top must be an integer >= 1"),
    ("top", 1.5, "top"),
    ("selected", [["features.15"]], r"selected must be \[\] or a path"),
    ("selected", [["features.15", -1]], "selected must be"),
    ("selected", [["features.15", 1.0]], "selected must be"),
    ("selected", "features.15", "selected"),
])
def test_bad_tree_state_is_refused(xp, image, name, value, match):
    view = CompositionTree(xp, image)
    before = getattr(view, name)
    raises(traitlets.TraitError, match, lambda: setattr(view, name, value))
    refused_from_view(view, name, value, before, match)


@pytest.fixture(scope="module")
def atlas(xp, data, tmp_path_factory):
    return Atlas.build(xp, data, [LAYER], tmp_path_factory.mktemp("atlas") / "a", k=4, batch_size=20, progress=False)


@pytest.mark.parametrize("name, value, match", [
    ("page", -1, "page must be an integer >= 0; got -1"),
    ("page", 5, r"page 5 does not exist \(pages: 0..0\)"),
    ("page", True, "page must be an integer"),
    ("page_size", 0, "page_size must be an integer >= 1"),
    ("page_size", -8, "page_size must be an integer >= 1"),
    ("mode", "both", "mode"),
])
def test_bad_gallery_state_is_refused(atlas, name, value, match):
    gallery = NeuronGallery(atlas, LAYER, 1)
    assert gallery._worker.wait_idle(30)
    before = getattr(gallery, name)
    raises(traitlets.TraitError, match, lambda: setattr(gallery, name, value))
    refused_from_view(gallery, name, value, before, match)


@pytest.mark.parametrize("cache_size, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_gallery_cache_size_is_checked(atlas, cache_size, error):
    raises(error, "cache_size must be an integer >= 0", lambda: NeuronGallery(atlas, cache_size=cache_size))


@pytest.fixture(scope="module")
def lens(world, atlas):
    return cs.SemanticLens(atlas, world.clip, n=4, crop="none", progress=False)


@pytest.mark.parametrize("name, value, match", [
    ("k", 0, "k must be an integer >= 1; got 0"),
    ("k", True, "k must be an integer >= 1; got bool"),
    ("layer", "features.0", "unknown layer 'features.0'; layers: features.15"),
])
def test_bad_semantic_search_state_is_refused(lens, name, value, match):
    view = SemanticSearch(lens)
    before = getattr(view, name)
    raises(traitlets.TraitError, match, lambda: setattr(view, name, value))
    refused_from_view(view, name, value, before, match)


@pytest.mark.parametrize("references, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                               (True, TypeError)])
def test_semantic_search_references_are_checked(lens, references, error):
    raises(error, "references must be an integer >= 1", lambda: SemanticSearch(lens, references=references))


def test_explore_refuses_a_lens_of_another_dataset(xp, world, data, atlas, image, tmp_path):
    other = Atlas.build(xp, [data[i] for i in range(20, 30)], [LAYER], tmp_path / "other", k=4, batch_size=10,
                        progress=False)
    lens = cs.SemanticLens(other, world.clip, n=4, crop="none", progress=False)
    raises(cs.AtlasMismatchError, "the lens was made from the atlas at .*other.* another model, composite or "
                                  "dataset than the atlas at", lambda: cs.explore(xp, image, atlas=atlas, lens=lens))


def test_explore_refuses_a_lens_of_another_model(world, lens, image):
    other = copy.deepcopy(world.model)
    _data_mul(other)
    raises(cs.AtlasMismatchError, "was built for a different model", lambda: cs.explore(cs.Explainer(other), image,
                                                                                          lens=lens))


# --- widgets: messages and logs -------------------------------------------------------------------------------------

def test_a_huge_rejected_message_is_logged_shortened(heatmap, caplog):
    payload = list(range(2_000_000))
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        heatmap._on_message(heatmap, {"type": "region", "id": 1, "box": payload}, [])
    assert heatmap.sent[-1]["type"] == "error" and len(heatmap.sent[-1]["message"]) < 400
    assert caplog.records and all(len(record.getMessage()) < 2000 for record in caplog.records)


def test_a_huge_unknown_message_type_is_answered_and_logged_shortened(heatmap, caplog):
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        heatmap._on_message(heatmap, {"type": "x" * 5_000_000, "id": 3}, [])
    reply = heatmap.sent[-1]
    assert reply["id"] == 3 and reply["message"].startswith("unknown message type 'xxx") and len(reply["message"]) < 400
    assert caplog.records and all(len(record.getMessage()) < 2000 for record in caplog.records)


def test_a_huge_refused_state_is_logged_shortened(heatmap, caplog):
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        heatmap.set_state({"region": list(range(1_000_000))})
    assert caplog.records and all(len(record.getMessage()) < 2000 for record in caplog.records)


def test_a_wrongly_typed_message_field_is_named(heatmap):
    heatmap._on_message(heatmap, {"type": "pixel", "id": 2, "x": "1", "y": 2}, [])
    assert heatmap.sent[-1] == {"type": "error", "id": 2,
                                "message": "'pixel' message: field 'x' must be int; got str '1'"}
    with pytest.raises(ProtocolError):
        heatmap._on_pixel(500, 500)


# --- widgets: explore ---------------------------------------------------------------------------------------------

def test_explore_names_non_finite_input_pixels(xp, image):
    raises(ValueError, "the input has 1 non-finite", lambda: cs.explore(xp, _nan(image)))


def test_explore_refuses_an_atlas_of_another_model(world, atlas, image):
    other = copy.deepcopy(world.model)
    _data_mul(other)
    raises(cs.AtlasMismatchError, "was built for a different model", lambda: cs.explore(cs.Explainer(other), image,
                                                                                          atlas=atlas))


def test_explore_refuses_an_atlas_of_another_composite(world, atlas, image):
    explainer = cs.Explainer(world.model, "epsilon")
    raises(cs.AtlasMismatchError, "different LRP composite", lambda: cs.explore(explainer, image, atlas=atlas))


def test_explore_refuses_class_names_of_the_wrong_length(xp, image):
    raises(ValueError, "classes names 3 classes, but the model has 7", lambda: cs.explore(xp, image,
                                                                                           classes=["a", "b", "c"]))


# --- the HTML snapshot ----------------------------------------------------------------------------------------------

HOSTILE = ["<!--<script>", "</script><script>alert(1)</script>", "<!--", "]]>", "\u2028</SCRIPT >", "&lt;b&gt;"]


@pytest.mark.parametrize("label", HOSTILE)
def test_the_snapshot_embeds_any_text_as_data(xp, image, tmp_path, label):
    classes = [label] + [f"class {i}" for i in range(6)]
    view = TargetView(xp, image, classes=classes, target=0)
    assert view._worker.wait_idle(30)
    page = save_html(view, tmp_path / "s.html").read_text(encoding="utf-8")
    data = page.split('<script type="application/json" id="cs-snapshot">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data
    assert json.loads(data)["layout"]["state"]["classes"][0] == label
