"""The concept atlas against brute force (every score of every sample kept, then sorted), across interruption
(SIGKILL and a crash between the two writes of a checkpoint), torchrun sharding, identity checks, bad input, crops
and the ground truth of the shapes world."""
import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import conceptscope as cs
from conceptscope.atlas import Atlas, AtlasMismatchError, store, topk
from conceptscope.atlas.crop import reference_boxes, relevant_box, relevant_boxes
from conceptscope.atlas.samples import load_sample
from conceptscope.world.concepts import COLOURS

N, BATCH, K = 64, 10, 8  # 7 batches, the last one partial: uneven shards over 2 ranks
LAYERS = ["features.8", "features.11", "features.15", "classifier.0"]
# Batched CPU kernels round differently with another number of threads, so every build here uses one (as torchrun's
# workers do by default): in-process builds through the autouse fixture, subprocesses through OMP_NUM_THREADS.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
CLI = ["-m", "conceptscope.atlas", "--samples", str(N), "--batch-size", str(BATCH), "--k", str(K), "--layers", *LAYERS,
       "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(world):
    return world.dataset("test", N)


@pytest.fixture(scope="module")
def explainer(world):
    return cs.Explainer(world.model)


@pytest.fixture(scope="module")
def built(tmp_path_factory, explainer, dataset):
    """An uninterrupted single-process build (checkpoint after every batch), with the order of its file replaces."""
    path = tmp_path_factory.mktemp("atlas") / "shapes"
    replaced = []
    real_replace = os.replace

    def recording_replace(source, target):
        replaced.append(Path(target).name)
        real_replace(source, target)

    with mock.patch.object(store.os, "replace", recording_replace):
        atlas = Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=BATCH, checkpoint_every=1,
                            progress=False)
    return atlas, replaced


@pytest.fixture(scope="module")
def brute(explainer, dataset):
    """Every sample's per-channel relevance (summed over space) and activation (max over space), and its target."""
    scores = {layer: {"relevance": [], "activation": []} for layer in LAYERS}
    targets = []
    for start in range(0, N, BATCH):  # the build's batches: batched kernels may round differently in other batches
        batch = range(start, min(start + BATCH, N))
        attribution = explainer.attribute(torch.stack([dataset[i][0] for i in batch]), [dataset[i][1] for i in batch],
                                          LAYERS)
        targets += attribution.targets
        for layer in LAYERS:
            relevance, activation = attribution.relevances[layer], attribution.activations[layer]
            scores[layer]["relevance"].append(relevance.flatten(2).sum(2) if relevance.dim() > 2 else relevance)
            scores[layer]["activation"].append(activation.flatten(2).amax(2) if activation.dim() > 2 else activation)
    scores = {layer: {mode: torch.cat(parts).numpy() for mode, parts in by_mode.items()}
              for layer, by_mode in scores.items()}
    return scores, np.array(targets)


def ranked(values, ids, k):
    """The k best (value desc, id asc) of the non-zero ``values``: the reference ranking, by plain sorting (a sample
    on which the concept's score is exactly 0 is never a reference)."""
    live = values != 0
    values, ids = values[live], ids[live]
    order = np.lexsort((ids, -values))[:k]
    return ids[order], values[order]


def state_of(path):
    manifest = store.read_manifest(path)
    return manifest, store.load_tensors(path, manifest)


def assert_same_state(path, reference):
    manifest, tensors = state_of(path)
    assert manifest["progress"]["complete"]
    _, expected = state_of(reference)
    assert tensors.keys() == expected.keys()
    for key in expected:
        assert torch.equal(tensors[key], expected[key]), key


# -- correctness -----------------------------------------------------------------------------------------------------
def test_atlas_equals_brute_force(built, brute):
    atlas, _ = built
    scores, targets = brute
    ids = np.arange(N)
    for layer in LAYERS:
        for mode in ("relevance", "activation"):
            live = (scores[layer][mode] != 0).sum(0)
            np.testing.assert_array_equal(atlas.live_counts(layer, mode).numpy(), live)
            for channel in range(atlas.layers[layer]):
                found = atlas.top(layer, channel, mode)
                want_indices, want_values = ranked(scores[layer][mode][:, channel], ids, K)
                np.testing.assert_array_equal(found[0], want_indices)
                np.testing.assert_array_equal(found[1], want_values)
                assert found.live == live[channel] and (found.reason is None) == (live[channel] >= K)
        relevance = scores[layer]["relevance"].astype(np.float64)
        sums = np.stack([relevance[targets == c].sum(0) for c in range(len(atlas.classes))], 1)
        np.testing.assert_allclose(atlas.class_relevance(layer).numpy(), sums, rtol=1e-9, atol=1e-8)
        for channel in (0, atlas.layers[layer] - 1):
            for c in np.unique(targets):
                members = ids[targets == c]
                want_indices, want_values = ranked(scores[layer]["relevance"][members, channel], members, K)
                indices, values = found = atlas.top(layer, channel, cls=int(c))
                assert found.live == (scores[layer]["relevance"][members, channel] != 0).sum()
                np.testing.assert_array_equal(indices, want_indices)
                np.testing.assert_array_equal(values, want_values)
    np.testing.assert_array_equal(atlas.class_counts().numpy(), np.bincount(targets, minlength=len(atlas.classes)))


def test_top_pages_through_references(built):
    atlas, _ = built
    indices, values = atlas.top("features.11", 5)
    paged = [atlas.top("features.11", 5, n=3, offset=offset) for offset in (0, 3, 6)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in paged]), indices)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in paged]), values)


def test_merge_is_order_independent():
    torch.manual_seed(0)
    values = torch.randint(0, 5, (3, 200)).float()  # many ties
    values[1] = float("-inf")  # a channel that never fires
    ids = torch.arange(200).expand(3, 200)
    want = [ranked(row.numpy(), np.arange(200), 16) for row in values]
    for _ in range(3):
        order = torch.randperm(200)
        kept = topk.empty((3,), 16)
        for part in order.split(37):
            kept = topk.merge(*kept, values[:, part], ids[:, part], 16)
        for row, (want_ids, want_values) in enumerate(want):
            real = torch.isfinite(kept[0][row])
            np.testing.assert_array_equal(kept[1][row][real].numpy(), want_ids[np.isfinite(want_values)])
            np.testing.assert_array_equal(kept[0][row][real].numpy(), want_values[np.isfinite(want_values)])
    assert (kept[1][1] == -1).all()  # no fake entries


def test_class_statistics_queries(built, brute):
    atlas, _ = built
    scores, targets = brute
    relevance = scores["features.15"]["relevance"].astype(np.float64)
    counts = np.bincount(targets, minlength=len(atlas.classes))
    means = np.stack([relevance[targets == c].sum(0) for c in range(len(counts))], 1) / np.maximum(counts, 1)
    best = atlas.classes_for("features.15", 7, n=3)
    present = [c for c in np.argsort(-means[7], kind="stable") if counts[c]]
    assert [score.index for score in best] == present[:3]
    assert best[0].name == atlas.classes[best[0].index]
    assert best[0].relevance == pytest.approx(means[7, best[0].index])
    name = atlas.classes[int(np.bincount(targets).argmax())]
    concepts = atlas.concepts_for(name, n=4)
    assert list(concepts) == LAYERS
    column = means[:, atlas.classes.index(name)]
    assert [score.channel for score in concepts["features.15"]] == list(np.argsort(-column, kind="stable")[:4])
    with pytest.raises(ValueError, match="unknown class"):
        atlas.concepts_for("purple")


# -- storage, resume, sharding ---------------------------------------------------------------------------------------
def test_atomic_writes_commit_the_manifest_last(built):
    atlas, replaced = built
    assert sorted(p.name for p in atlas.path.iterdir()) == ["manifest.json", f"state-{N:012d}.safetensors"]
    batches = -(-N // BATCH)
    assert len(replaced) == 2 * batches
    assert replaced[1::2] == ["manifest.json"] * batches  # each checkpoint: its state file, then the manifest
    assert all(name.startswith("state-") for name in replaced[0::2])


def test_build_again_returns_the_finished_atlas(built, explainer, dataset):
    atlas, _ = built
    before = {p.name: p.read_bytes() for p in atlas.path.iterdir()}
    again = Atlas.build(explainer, dataset, LAYERS, atlas.path, k=K, batch_size=BATCH, progress=False)
    assert again.manifest == atlas.manifest
    assert {p.name: p.read_bytes() for p in atlas.path.iterdir()} == before


def test_resume_after_sigkill_equals_uninterrupted(built, explainer, dataset, tmp_path):
    atlas, _ = built
    path = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, *CLI, "--path", str(path), "--checkpoint-every", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + 60
    while store.read_manifest(path) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    manifest = store.read_manifest(path)
    assert manifest is not None, process.stderr.read().decode()
    assert 0 < manifest["progress"]["samples_done"] < N and not manifest["progress"]["complete"]
    (path / ".state-000000000060.safetensors.4242.tmp").write_bytes(b"half a file")  # as if killed mid-write
    Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=BATCH, checkpoint_every=1, progress=False)
    assert_same_state(path, atlas.path)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", f"state-{N:012d}.safetensors"]


def test_crash_between_state_and_manifest_then_resume(built, explainer, dataset, tmp_path):
    atlas, _ = built
    path = tmp_path / "crashed"
    real_write, manifests = store.atomic_write, []

    def crash_on_second_manifest(target, data):
        if Path(target).name == store.MANIFEST:
            manifests.append(target)
            if len(manifests) == 2:
                raise OSError("simulated crash")
        real_write(target, data)

    with mock.patch.object(store, "atomic_write", crash_on_second_manifest), pytest.raises(OSError, match="simulated"):
        Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=BATCH, checkpoint_every=1, progress=False)
    assert store.read_manifest(path)["progress"]["samples_done"] == BATCH  # the second state file is uncommitted
    assert len(list(path.glob("state-*"))) == 2
    Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=BATCH, checkpoint_every=3, progress=False)
    assert_same_state(path, atlas.path)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", f"state-{N:012d}.safetensors"]


def test_torchrun_two_processes_equal_one(built, tmp_path):
    atlas, _ = built
    path = tmp_path / "sharded"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *CLI,
                          "--path", str(path), "--checkpoint-every", "2"], capture_output=True, text=True, timeout=120,
                         env=ENV)
    assert run.returncode == 0, f"torchrun exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    assert_same_state(path, atlas.path)


# -- identity and bad input ------------------------------------------------------------------------------------------
def test_load_refuses_another_model_dataset_or_composite(built, world, explainer, dataset):
    atlas, _ = built
    assert Atlas.load(atlas.path, explainer, dataset).manifest == atlas.manifest
    other = copy.deepcopy(world.model)
    with torch.no_grad():
        other.features[0].weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(AtlasMismatchError, match=r"different model \(weights digest [0-9a-f]{12}… of a ShapesVGG vs"):
        Atlas.load(atlas.path, cs.Explainer(other), dataset)
    with pytest.raises(AtlasMismatchError, match=f"different dataset \\(length {N} vs 40\\)"):
        Atlas.load(atlas.path, explainer, world.dataset("test", 40))
    with pytest.raises(AtlasMismatchError, match="different dataset .*sampled items hash"):
        Atlas.load(atlas.path, explainer, world.dataset("test", N, seed=1))
    with pytest.raises(AtlasMismatchError, match="different LRP composite .*EpsilonAlpha2Beta1"):
        Atlas.load(atlas.path, cs.Explainer(world.model, "epsilon_alpha2_beta1"), dataset)


def test_build_refuses_a_path_holding_another_atlas(built, world, dataset):
    atlas, _ = built
    before = {p.name: p.read_bytes() for p in atlas.path.iterdir()}
    other = copy.deepcopy(world.model)
    with torch.no_grad():
        other.classifier[2].bias += 1
    with pytest.raises(AtlasMismatchError, match="different model"):
        Atlas.build(cs.Explainer(other), dataset, LAYERS, atlas.path, k=K, batch_size=BATCH, progress=False)
    with pytest.raises(AtlasMismatchError, match="other settings .*k=8 vs 4"):
        Atlas.build(cs.Explainer(world.model), dataset, LAYERS, atlas.path, k=4, batch_size=BATCH, progress=False)
    assert {p.name: p.read_bytes() for p in atlas.path.iterdir()} == before


class Altered(Dataset):
    """The first ``n`` items of ``dataset``, with ``change(index, image)`` applied to the images."""

    def __init__(self, dataset, n, change):
        self.dataset, self.n, self.change = dataset, n, change

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        image, label = self.dataset[index]
        return self.change(index, image), label


def test_bad_input_is_refused_before_writing(explainer, dataset, tmp_path):
    path = tmp_path / "atlas"
    channels_last = Altered(dataset, 8, lambda i, image: image.permute(1, 2, 0))
    with pytest.raises(ValueError, match=r"item 0 cannot be explained: .*got shape \(1, 64, 64, 3\) \(channels last"):
        Atlas.build(explainer, channels_last, LAYERS, path, progress=False)
    smaller = Altered(dataset, 8, lambda i, image: image[:, :32, :32] if i == 5 else image)
    with pytest.raises(ValueError, match=r"dataset item 5 has shape \(3, 32, 32\), but item 0 has shape \(3, 64, 64\)"):
        Atlas.build(explainer, smaller, LAYERS, path, progress=False)
    with pytest.raises(KeyError, match="no layer 'features.99'.*features.0"):
        Atlas.build(explainer, dataset, ["features.99"], path, progress=False)
    assert not path.exists()
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no atlas"):
        Atlas.build(explainer, Altered(dataset, 8, lambda i, image: image), LAYERS, path, progress=False)
    assert [p.name for p in path.iterdir()] == ["notes.txt"]


def test_k_larger_than_the_dataset_has_no_fake_entries(explainer, dataset, tmp_path):
    small = Altered(dataset, 12, lambda i, image: image)
    atlas = Atlas.build(explainer, small, ["features.15"], tmp_path / "a", k=20, batch_size=5, progress=False)
    counts = atlas.class_counts()
    for channel in (0, 31):
        for mode in ("relevance", "activation"):
            indices, values = atlas.top("features.15", channel, mode)
            assert sorted(indices.tolist()) == list(range(12)) and np.isfinite(values).all()
        for c in range(len(counts)):
            assert len(atlas.top("features.15", channel, cls=c)[0]) == counts[c]


def test_prediction_target(explainer, dataset, tmp_path):
    small = Altered(dataset, 12, lambda i, image: image)
    atlas = Atlas.build(explainer, small, ["features.15"], tmp_path / "a", k=4, batch_size=12, target="prediction",
                        modes=["relevance"], progress=False)
    attribution = explainer.attribute(torch.stack([small[i][0] for i in range(12)]), None, ["features.15"])
    np.testing.assert_array_equal(atlas.class_counts().numpy(), np.bincount(attribution.targets, minlength=7))
    relevance = attribution.relevances["features.15"].flatten(2).sum(2).numpy()
    for channel in (0, 9):
        np.testing.assert_array_equal(atlas.top("features.15", channel)[0], ranked(relevance[:, channel],
                                                                                   np.arange(12), 4)[0])


# -- references ------------------------------------------------------------------------------------------------------
def test_references_are_cropped_to_the_conditional_heatmap(built, explainer, dataset):
    atlas, _ = built
    atlas = Atlas.load(atlas.path, explainer, dataset)
    layer = "features.11"
    channel = max(range(atlas.layers[layer]), key=lambda c: atlas.top(layer, c, n=1)[1][0])
    references = atlas.references(layer, channel, n=4)
    assert [r.index for r in references] == atlas.top(layer, channel, n=4)[0].tolist()
    for reference in references:
        top, left, bottom, right = reference.box
        assert reference.image.shape == (bottom - top, right - left, 3) and reference.image.dtype == np.uint8
        assert reference.image.shape[0] * reference.image.shape[1] < 64 * 64
        heatmap = explainer.explain(dataset[reference.index][0], dataset[reference.index][1]).conditional_heatmaps(
            layer, [channel])[0]
        row, col = divmod(int(heatmap.argmax()), heatmap.shape[1])
        assert top <= row < bottom and left <= col < right
        np.testing.assert_allclose(reference.heatmap, heatmap.numpy(), rtol=1e-5, atol=1e-7)
    whole = atlas.references(layer, channel, n=1, crop=False)[0]
    raw = dataset.raw_image(whole.index)
    top, left, bottom, right = whole.box
    assert whole.image.shape == raw.shape
    np.testing.assert_array_equal(whole.image[top:bottom, left:right], raw[top:bottom, left:right])
    assert whole.image[:top].sum() + whole.image[bottom:].sum() < raw[:top].sum() + raw[bottom:].sum() or \
        (top == 0 and bottom == 64)
    with pytest.raises(ValueError, match="dataset"):
        Atlas.load(atlas.path, explainer).references(layer, channel)


def test_relmax_references_of_colour_channels_show_the_colour(built, brute, dataset):
    """Per colour, the channel of features.15 whose activation best separates images with and without the colour
    (ground-truth masks); its RelMax references should contain the colour far more often than images do."""
    atlas, _ = built
    scores, _ = brute
    activation = scores["features.15"]["activation"]
    masks = [dataset.masks(i) for i in range(N)]
    shares, base = [], []
    for colour in COLOURS:
        has = np.array([m[colour].any() for m in masks])
        separation = (activation[has].mean(0) - activation[~has].mean(0)) / (activation.std(0) + 1e-9)
        indices, _ = atlas.top("features.15", int(separation.argmax()), n=K)
        shares.append(np.mean([masks[i][colour].any() for i in indices]))
        base.append(has.mean())
    assert np.mean(shares) >= 0.85 and np.mean(shares) > np.mean(base) + 0.2, (shares, base)


def test_a_sample_is_the_model_input_its_label_and_the_datasets_picture(built, explainer, dataset):
    atlas = Atlas.load(built[0].path, explainer, dataset)
    sample = atlas.sample(5)
    image, label = dataset[5]
    assert sample.index == 5 and sample.label == label
    torch.testing.assert_close(sample.image, image, rtol=0, atol=0)
    np.testing.assert_array_equal(sample.picture, dataset.raw_image(5))
    with pytest.raises(ValueError, match="dataset"):
        Atlas.load(built[0].path, explainer).sample(5)


def test_a_sample_without_a_picture_of_its_own_shows_the_input_in_rgb():
    """Grey inputs (one channel) and grey raw images both become RGB pictures, in the one place that makes them."""
    class Grey(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return torch.linspace(-1, 1, 16).reshape(1, 4, 4) * (index + 1), index

    sample = load_sample(Grey(), 1, "label")
    assert sample.picture.shape == (4, 4, 3) and sample.label == 1
    assert sample.picture[0, 0].tolist() == [0, 0, 0] and sample.picture[3, 3].tolist() == [255, 255, 255]

    class GreyPictures(Grey):
        def raw_image(self, index):
            return np.full((4, 4), 9 * index, dtype=np.uint8)

    np.testing.assert_array_equal(load_sample(GreyPictures(), 1, None).picture, np.full((4, 4, 3), 9, np.uint8))


def test_a_model_changed_during_the_build_stops_it(world, tmp_path):
    model = copy.deepcopy(world.model)
    data = world.dataset("test", n=40)

    class Changing(torch.utils.data.Dataset):
        classes = data.classes

        def __len__(self):
            return len(data)

        def __getitem__(self, index):
            if index == 25:
                with torch.no_grad():
                    model.classifier[2].weight.mul_(2)  # someone edits the model while the build runs
            return data[index]

    with pytest.raises(RuntimeError, match="the model changed while the atlas .* was being built"):
        Atlas.build(cs.Explainer(model), Changing(), ["features.15"], tmp_path / "a", k=4, batch_size=10,
                    progress=False)


def test_relevant_boxes_by_hand_and_batched():
    """The smallest set of pixels holding the share of positive relevance, padded (2 px here), grown to 5 px and
    shifted into the image; found for a batch at once as for each heatmap alone; None without positive relevance,
    then the activation's box for ActMax references."""
    heatmap = torch.zeros(20, 20)
    heatmap[5, 5], heatmap[15, 15], heatmap[0, 19], heatmap[10, 10] = 3, 1, 1, -4
    assert relevant_box(heatmap) == (3, 3, 8, 8)  # 3 of 5 is enough: the pixel at (5, 5) alone
    assert relevant_box(heatmap, share=0.7) == (0, 1, 20, 20)  # all three: rows 0..15, columns 5..19, padded
    negative = -heatmap.abs()
    batch = torch.stack([heatmap, negative, heatmap.roll(4, 0)])
    assert relevant_boxes(batch) == [relevant_box(h) for h in batch] == [(3, 3, 8, 8), None, (7, 3, 12, 8)]
    activation = torch.zeros(10, 10)
    activation[9, 0] = 1.0
    found = reference_boxes(batch, [activation] * 3, "activation")
    assert found[0] == (3, 3, 8, 8) and found[1] is not None and found[1][0] > 10 and found[1][1] == 0
    assert reference_boxes(batch, [activation] * 3, "relevance")[1] is None
