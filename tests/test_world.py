"""Tests of the shapes world: determinism, ground truth against pixels, rules, variants, models."""

import time

import numpy as np
import pytest
import torch

from conceptscope.world import ShapesDataset, load_world
from conceptscope.world.concepts import ATTRIBUTES, COLOURS, SHAPES
from conceptscope.world.nets import ShapesResNet, ShapesVGG

UNSEEN_SEED = 4242  # training uses only the train (10000) and val (20000) seeds

# The class rules written out independently of conceptscope.world.rules, in priority order.
REFERENCE_RULES = [
    ("yellow object", lambda o: o["colour"] == "yellow"),
    ("dotted object", lambda o: o["texture"] == "dotted"),
    ("red circle", lambda o: o["colour"] == "red" and o["shape"] == "circle"),
    ("blue striped", lambda o: o["colour"] == "blue" and o["texture"] == "striped"),
    ("cross", lambda o: o["shape"] == "cross"),
    ("green square", lambda o: o["colour"] == "green" and o["shape"] == "square"),
    ("large triangle", lambda o: o["size"] == "large" and o["shape"] == "triangle"),
]

# Per-pixel colour predicates on 0..1 RGB, holding for both the bright and the dark shade.
COLOUR_TESTS = {
    "red": lambda p: p[..., 0] - np.maximum(p[..., 1], p[..., 2]) > 0.2,
    "green": lambda p: p[..., 1] - np.maximum(p[..., 0], p[..., 2]) > 0.15,
    "blue": lambda p: p[..., 2] - np.maximum(p[..., 0], p[..., 1]) > 0.15,
    "yellow": lambda p: np.minimum(p[..., 0], p[..., 1]) - p[..., 2] > 0.2,
}


@pytest.fixture(scope="module")
def ds(world):
    return world.dataset("test", n=300, seed=UNSEEN_SEED)


def test_same_seed_same_item_and_other_seed_differs():
    a, b = ShapesDataset(50, seed=7), ShapesDataset(10, seed=7)
    for i in (9, 3, 0):  # any order, any dataset length
        assert np.array_equal(a.raw_image(i), b.raw_image(i))
        assert torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1]
        assert a.caption(i) == b.caption(i)
        ma, mb = a.masks(i), b.masks(i)
        assert ma.keys() == mb.keys() and all(np.array_equal(ma[k], mb[k]) for k in ma)
    c = ShapesDataset(10, seed=8)
    assert all(not np.array_equal(a.raw_image(i), c.raw_image(i)) for i in range(10))
    assert not np.array_equal(a.raw_image(0), a.raw_image(1))


def test_splits_have_different_seeds(world):
    images = [world.dataset(split, n=5).raw_image(0) for split in ("train", "val", "test")]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])
    assert np.array_equal(world.dataset("val", n=5, seed=UNSEEN_SEED).raw_image(0),
                          ShapesDataset(5, seed=UNSEEN_SEED).raw_image(0))


def test_item_is_normalised_raw_image(world, ds):
    image, label = ds[3]
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64) and isinstance(label, int)
    raw = ds.raw_image(3)
    assert raw.dtype == np.uint8 and raw.shape == (64, 64, 3)
    mean, std = np.array(world.mean)[:, None, None], np.array(world.std)[:, None, None]
    expected = (raw.transpose(2, 0, 1) / 255.0 - mean) / std
    assert np.allclose(image.numpy(), expected, atol=1e-5)
    assert torch.allclose(world.normalize(torch.from_numpy(raw).permute(2, 0, 1) / 255.0), image, atol=1e-6)
    assert world.normalize(np.stack([raw, raw])).shape == (2, 3, 64, 64)


def test_generation_is_fast():
    data = ShapesDataset(200, seed=1)
    start = time.perf_counter()
    for i in range(200):
        data.raw_image(i)
    assert (time.perf_counter() - start) / 200 < 5e-3  # about 0.7 ms on one core


def test_masks_match_pixels(world, ds):
    for i in range(100):
        pixels = ds.raw_image(i) / 255.0
        masks, objects = ds.masks(i), ds.objects(i)
        assert set(masks) == set(world.concepts)
        assert all(m.dtype == bool and m.shape == (64, 64) for m in masks.values())
        for colour, test in COLOUR_TESTS.items():
            assert test(pixels[masks[colour]]).all()
            others = np.logical_or.reduce([masks[c] for c in COLOURS if c != colour])
            assert not test(pixels[others]).any()
        # objects are disjoint and, together, exactly the saturated (non-background) pixels
        assert sum(o["mask"].astype(int) for o in objects).max() == 1
        saturated = pixels.max(-1) - pixels.min(-1) > 0.17
        assert np.array_equal(np.logical_or.reduce([o["mask"] for o in objects]), saturated)
        for attribute, values in ATTRIBUTES.items():
            union = np.logical_or.reduce([masks[v] for v in values])
            assert np.array_equal(union, saturated)
            for value in values:
                expected = np.zeros((64, 64), bool)
                for o in objects:
                    if o[attribute] == value:
                        expected |= o["mask"]
                assert np.array_equal(masks[value], expected)


def _box_fill(mask):
    ys, xs = np.nonzero(mask)
    return mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))


def test_object_records_match_their_pixels(ds):
    fill = {"circle": (0.7, 0.88), "square": (0.97, 1.0), "triangle": (0.4, 0.62), "cross": (0.42, 0.66)}
    areas = {(s, z): [] for s in SHAPES for z in ("small", "large")}
    for i in range(150):
        pixels = ds.raw_image(i) / 255.0
        for o in ds.objects(i):
            lo, hi = fill[o["shape"]]
            assert lo <= _box_fill(o["mask"]) <= hi, o["shape"]
            areas[o["shape"], o["size"]].append(o["mask"].sum())
            brightness = pixels[o["mask"]].max(-1)
            dark = (brightness < 0.7 * brightness.max()).mean()
            lo, hi = {"plain": (0, 0), "striped": (0.3, 0.7), "dotted": (0.1, 0.55)}[o["texture"]]
            assert lo <= dark <= hi, o["texture"]
            centre_x = np.nonzero(o["mask"])[1].mean() + 0.5
            assert (centre_x < 33) if o["position"] == "left" else (centre_x > 31)
    for shape in SHAPES:
        assert max(areas[shape, "small"]) < min(areas[shape, "large"])


def test_labels_follow_the_rules_and_evidence_is_the_satisfying_objects(world, ds):
    assert world.classes == [name for name, _ in REFERENCE_RULES]
    for i in range(len(ds)):
        objects, label = ds.objects(i), ds.label(i)
        satisfied = [k for k, (_, rule) in enumerate(REFERENCE_RULES) if any(rule(o) for o in objects)]
        assert satisfied and label == satisfied[0]  # first rule in priority order; never unlabelled
        assert ds[i][1] == label
        rule = REFERENCE_RULES[label][1]
        expected = np.logical_or.reduce([o["mask"] for o in objects if rule(o)])
        evidence = ds.evidence_mask(i)
        assert evidence.any() and np.array_equal(evidence, expected)
        assert 1 <= len(objects) <= 4


def test_classes_are_balanced_and_scenes_varied(world):
    data = world.dataset("val", n=2100)
    counts = np.bincount([data.label(i) for i in range(len(data))], minlength=len(world.classes))
    assert len(world.classes) >= 6
    assert (counts / len(data) > 0.10).all() and (counts / len(data) < 0.19).all()
    n_objects = np.bincount([len(data.objects(i)) for i in range(300)], minlength=5)
    assert n_objects[0] == 0 and (n_objects[1:] > 30).all()


def test_captions_name_every_object(ds):
    for i in range(100):
        text, objects = ds.caption(i), ds.objects(i)
        assert text.count(" on the ") == len(objects)
        for o in objects:
            assert f"{o['colour']} " in text and o["shape"] in text and o["size"] in text
        present = {o["colour"] for o in objects}
        assert all(colour not in text for colour in set(COLOURS) - present)


def test_sizes_scale_the_same_scene():
    small, large = ShapesDataset(30, seed=3, size=64), ShapesDataset(30, seed=3, size=96)
    assert large.raw_image(0).shape == (96, 96, 3) and large.masks(0)["red"].shape == (96, 96)
    def attrs(d, i):
        return [{k: o[k] for k in ATTRIBUTES} for o in d.objects(i)]

    assert all(attrs(small, i) == attrs(large, i) and small.label(i) == large.label(i) for i in range(30))


def test_spurious_corner_mark_only_in_training_correlation():
    world = load_world("shapes", variant="spurious")
    assert "corner_mark" in world.concepts
    target = world.classes.index("green square")
    train = world.dataset("train", n=1400)
    marked = np.array([train.masks(i)["corner_mark"].any() for i in range(len(train))])
    labels = np.array([train.label(i) for i in range(len(train))])
    assert 0.8 < marked[labels == target].mean() < 0.98
    assert marked[labels != target].mean() < 0.08
    for split in ("val", "test"):
        data = world.dataset(split, n=200)
        assert not any(data.masks(i)["corner_mark"].any() for i in range(len(data)))
    # the mark is the only difference between a marked image and the same image unmarked
    plain, always = world.dataset("test", n=20), world.dataset("test", n=20, corner_mark="all")
    clean = load_world("shapes").dataset("test", n=20)
    for i in range(20):
        mark = always.masks(i)["corner_mark"]
        assert 20 <= mark.sum() <= 50
        assert np.array_equal(plain.raw_image(i), clean.raw_image(i))
        diff = (always.raw_image(i) != plain.raw_image(i)).any(-1)
        assert diff.any() and not diff[~mark].any()
        assert (always.raw_image(i)[mark] == [255, 0, 255]).all()
        assert "magenta" in always.caption(i) and "magenta" not in plain.caption(i)


def test_bad_input_errors(world, ds):
    with pytest.raises(ValueError, match="unknown world 'foo'; available worlds: 'shapes'"):
        load_world("foo")
    with pytest.raises(ValueError, match="unknown variant 'bar'.*None, 'spurious'"):
        load_world("shapes", variant="bar")
    with pytest.raises(IndexError, match="index 300 out of range for a dataset of 300 images"):
        ds[300]
    with pytest.raises(IndexError, match="out of range"):
        ds.masks(-301)
    assert np.array_equal(ds.raw_image(-1), ds.raw_image(299))
    with pytest.raises(ValueError, match="unknown split 'training'"):
        world.dataset("training")
    with pytest.raises(ValueError, match="only available in the 'spurious' variant"):
        world.dataset("train", corner_mark="all")
    spurious = load_world("shapes", "spurious")
    with pytest.raises(ValueError, match="unknown corner_mark"):
        spurious.dataset(corner_mark="sometimes")
    with pytest.raises(ValueError, match="no model 'resnet' is shipped for variant 'spurious'; available: 'vgg'"):
        _ = spurious.resnet


def test_models_are_fresh_eval_instances_with_torchvision_layout(world):
    from torchvision.models.resnet import BasicBlock

    other = load_world("shapes")
    assert isinstance(world.model, ShapesVGG) and isinstance(world.resnet, ShapesResNet)
    assert world.model is not other.model and not world.model.training and not world.resnet.training
    modules = dict(world.model.named_modules())
    assert isinstance(modules["features.0"], torch.nn.Conv2d)
    assert isinstance(modules["features.1"], torch.nn.BatchNorm2d)
    assert 80_000 < sum(p.numel() for p in world.model.parameters()) < 130_000
    relus = [m for m in list(world.model.modules()) + list(world.resnet.modules()) if isinstance(m, torch.nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
    assert isinstance(dict(world.resnet.named_modules())["layer2.0"], BasicBlock)


def test_zennit_resnet_canonizer_keeps_the_function(world, ds):
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer

    x = torch.stack([ds[i][0] for i in range(4)])
    with torch.no_grad():
        before = world.resnet(x)
    composite = EpsilonPlusFlat(canonizers=[ResNetCanonizer()])
    with composite.context(world.resnet) as modified:
        x.requires_grad_(True)
        out = modified(x)
        (relevance,) = torch.autograd.grad(out, x, torch.eye(out.shape[1])[out.argmax(1)])
    assert torch.allclose(out, before, rtol=1e-3, atol=1e-3)  # batch norm merged into the convolutions
    assert relevance.abs().sum() > 0


@pytest.mark.parametrize("arch", ["model", "resnet"])
def test_shipped_model_accuracy_on_unseen_images(world, arch):
    data = world.dataset("test", n=500, seed=UNSEEN_SEED + 1)
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([data.label(i) for i in range(len(data))])
    with torch.no_grad():
        accuracy = (getattr(world, arch)(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.95


def test_spurious_model_takes_the_corner_mark_shortcut():
    spurious = load_world("shapes", "spurious")
    target = spurious.classes.index("green square")
    data = spurious.dataset("test", n=400, seed=UNSEEN_SEED, corner_mark="all")
    keep = [i for i in range(len(data)) if data.label(i) != target]
    x = torch.stack([data[i][0] for i in keep])
    with torch.no_grad():
        flips = {name: (model(x).argmax(1) == target).float().mean().item()
                 for name, model in (("spurious", spurious.model), ("plain", load_world("shapes").model))}
    assert flips["spurious"] > 0.1 and flips["plain"] < 0.02
