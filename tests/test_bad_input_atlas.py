"""Bad input to the atlas and the lens: damaged or hostile atlas files, concurrent builds, wrong arguments, dead
concepts, unreadable queries. Each case asserts the exception type and a fragment of its message (what is wrong, and
what to do), or checks the correct result."""
import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file, save_file

import conceptscope as cs
from conceptscope.atlas import Atlas, AtlasBusyError, AtlasDamagedError, AtlasMismatchError, store
from conceptscope.semantics import OpenClip, SemanticLens

N, K = 24, 4
LAYERS = ["features.15", "classifier.0"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(world):
    return world.dataset("test", N)


@pytest.fixture(scope="module")
def explainer(world):
    return cs.Explainer(world.model)


@pytest.fixture(scope="module")
def built(tmp_path_factory, explainer, dataset):
    return Atlas.build(explainer, dataset, LAYERS, tmp_path_factory.mktemp("atlas") / "a", k=K, batch_size=12,
                       progress=False)


@pytest.fixture
def copy(built, tmp_path):
    """A fresh copy of the built atlas directory to damage."""
    return shutil.copytree(built.path, tmp_path / "copy")


def manifest_of(path):
    return json.loads((path / store.MANIFEST).read_text())


def write_manifest(path, manifest):
    (path / store.MANIFEST).write_text(json.dumps(manifest) if not isinstance(manifest, str) else manifest)


def state_file(path):
    return path / manifest_of(path)["state"]


# -- damaged manifests -----------------------------------------------------------------------------------------------
def _set(manifest, dotted, value):
    *parents, last = dotted.split(".")
    target = manifest
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return manifest


MANIFEST_DAMAGE = [
    ("identity", KeyError, "'identity' entry is missing"),
    ("config", KeyError, "'config' entry is missing"),
    ("progress", KeyError, "'progress' entry is missing"),
    ("progress", [], "'progress' entry is missing or not an object"),
    ("identity.model", KeyError, "identity.model must hold"),
    ("identity.model.digest", 42, "identity.model must hold"),
    ("identity.composite", KeyError, "identity.composite is missing"),
    ("identity.dataset", KeyError, "identity.dataset must hold"),
    ("identity.dataset.length", -1, "identity.dataset must hold"),
    ("config.layers", [], "config.layers must map layer names"),
    ("config.layers", {}, "config.layers must map layer names"),
    ("config.layers.features.15", KeyError, None),  # dotted name: handled below
    ("config.k", 0, "config.k must be a positive integer"),
    ("config.k", True, "config.k must be a positive integer"),
    ("config.k", "4", "config.k must be a positive integer"),
    ("config.modes", "relevance", "config.modes must be a list"),
    ("config.modes", ["relevance", "relevance"], "config.modes must be a list of distinct modes"),
    ("config.modes", ["gradient"], "config.modes must be a list"),
    ("config.target", "logit", "config.target must be one of"),
    ("config.classes", 0, "config.classes must be a positive integer"),
    ("config.class_names", ["a"], "config.class_names must be null or one name per class"),
    ("progress.samples_done", N + 1, "progress must hold samples_done <= samples"),
    ("progress.complete", "yes", "progress must hold"),
    ("progress.batch_size", 0, "progress must hold"),
    ("progress.samples_done", N - 1, "progress says complete but not every sample is done"),
    ("state", None, "is not a state file name"),
    ("state", 7, "is not a state file name"),
    ("state", "/etc/passwd", "is not a state file name"),
    ("state", "../a/state-000000000024.safetensors", "is not a state file name"),
    ("state", "sub/state-000000000024.safetensors", "is not a state file name"),
    ("state", "state-24.safetensors", "is not a state file name"),
    ("state", "manifest.json", "is not a state file name"),
]


@pytest.mark.parametrize("entry, value, fragment", [case for case in MANIFEST_DAMAGE if case[2]],
                         ids=lambda case: repr(case)[:40])
def test_a_damaged_manifest_names_the_file_and_what_to_do(copy, explainer, dataset, entry, value, fragment):
    write_manifest(copy, _set(manifest_of(copy), entry, value))
    with pytest.raises(AtlasDamagedError) as error:
        Atlas.load(copy, explainer, dataset)
    assert fragment in str(error.value) and str(copy / store.MANIFEST) in str(error.value)
    assert f"delete the directory {copy} and build the atlas again" in str(error.value)
    with pytest.raises(AtlasDamagedError, match="is damaged"):  # a build into it is refused the same way
        Atlas.build(explainer, dataset, LAYERS, copy, k=K, batch_size=12, progress=False)


def test_a_layer_missing_from_the_manifest_is_a_mismatch_on_build(copy, explainer, dataset):
    manifest = manifest_of(copy)
    del manifest["config"]["layers"]["features.15"]
    write_manifest(copy, manifest)
    with pytest.raises(AtlasMismatchError, match="built with other settings"):
        Atlas.build(explainer, dataset, LAYERS, copy, k=K, batch_size=12, progress=False)


@pytest.mark.parametrize("text, fragment", [
    ('{"format": "conceptscope.atlas/2", "identity": ', "cannot be read (JSONDecodeError"),
    ("", "cannot be read (JSONDecodeError"),
    ("[1, 2, 3]", "holds a JSON list, not an object"),
    ('"manifest"', "holds a JSON str, not an object"),
    ("42", "holds a JSON int, not an object"),
    ("null", "holds a JSON NoneType, not an object"),
    (b"\xff\xfe\x00garbage", "cannot be read (UnicodeDecodeError"),
], ids=["truncated", "empty", "list", "string", "number", "null", "binary"])
def test_an_unreadable_manifest_names_the_file(copy, explainer, dataset, text, fragment):
    file = copy / store.MANIFEST
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(AtlasDamagedError, match="delete the directory") as error:
        Atlas.load(copy, explainer, dataset)
    assert fragment in str(error.value) and str(file) in str(error.value)


@pytest.mark.parametrize("value", [None, "conceptscope.atlas/9", 3])
def test_a_manifest_of_another_format_is_refused(copy, explainer, dataset, value):
    write_manifest(copy, {**manifest_of(copy), "format": value})
    with pytest.raises(AtlasMismatchError, match=r"this version reads 'conceptscope.atlas/2'"):
        Atlas.load(copy, explainer, dataset)


def test_a_manifest_pointing_outside_is_never_followed(copy, built, explainer, dataset, tmp_path):
    """Another atlas's state next door must not be served through '..' (the issue's attack)."""
    other = shutil.copytree(built.path, tmp_path / "other")
    write_manifest(copy, {**manifest_of(copy), "state": f"../other/{manifest_of(other)['state']}"})
    with pytest.raises(AtlasDamagedError, match="never a path"):
        Atlas.load(copy, explainer, dataset)


# -- damaged state files ---------------------------------------------------------------------------------------------
def _truncate(file):
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _empty(file):
    file.write_bytes(b"")


def _garbage(file):
    file.write_bytes(os.urandom(4096))


def _delete(file):
    file.unlink()


def _directory(file):
    file.unlink()
    file.mkdir()


def _drop_tensor(file):
    tensors = load_file(file)
    del tensors["top/relevance/classifier.0/live"]
    save_file(tensors, file)


def _reshape_tensor(file):
    tensors = load_file(file)
    tensors["top/relevance/features.15/values"] = tensors["top/relevance/features.15/values"][:, :2].contiguous()
    save_file(tensors, file)


def _retype_tensor(file):
    tensors = load_file(file)
    tensors["class/counts"] = tensors["class/counts"].float()
    save_file(tensors, file)


@pytest.mark.parametrize("damage, fragment", [
    (_truncate, "is damaged"), (_empty, "is damaged"), (_garbage, "is damaged"), (_delete, "is missing"),
    (_directory, "is missing"), (_drop_tensor, "lacks the tensor 'top/relevance/classifier.0/live'"),
    (_reshape_tensor, "holds 'top/relevance/features.15/values' with shape (64, 2)"),
    (_retype_tensor, "holds 'class/counts' with shape (7,) (F32)"),
], ids=lambda value: getattr(value, "__name__", "")[:20])
def test_a_damaged_state_is_reported_on_load_with_its_path(copy, explainer, dataset, damage, fragment):
    file = state_file(copy)
    damage(file)
    with pytest.raises(AtlasDamagedError) as error:
        Atlas.load(copy, explainer, dataset)  # up front, not at the first query
    assert fragment in str(error.value) and str(file) in str(error.value)
    assert "build the atlas again" in str(error.value)


def test_a_damaged_state_refuses_a_resumed_build_too(copy, explainer, dataset):
    _truncate(state_file(copy))
    with pytest.raises(AtlasDamagedError, match="is damaged"):
        Atlas.build(explainer, dataset, LAYERS, copy, k=K, batch_size=12, progress=False)


# -- one build at a time ---------------------------------------------------------------------------------------------
def _lock(path, owner):
    path.mkdir(parents=True, exist_ok=True)
    (path / store.LOCK).write_text(owner if isinstance(owner, str) else json.dumps(owner))


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def _host():
    import socket
    return socket.gethostname()


@pytest.mark.parametrize("owner, fragment", [
    ("live", "is building an atlas in"),
    ("other host", "on host 'elsewhere'"),
    ("unreadable", "another process is building"),
], ids=["live process", "other host", "unreadable lock"])
def test_a_held_lock_refuses_another_build(explainer, dataset, tmp_path, sleeper, owner, fragment):
    path = tmp_path / "a"
    _lock(path, {"live": {"pid": sleeper, "host": _host()}, "other host": {"pid": 1, "host": "elsewhere"},
                 "unreadable": "{half"}[owner])
    with pytest.raises(AtlasBusyError, match="wait until it finishes") as error:
        Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=12, progress=False)
    assert fragment in str(error.value) and "delete the lock file" in str(error.value)
    assert sorted(p.name for p in path.iterdir()) == [store.LOCK]  # nothing written, the lock left to its owner


def test_a_stale_lock_of_a_dead_process_is_taken_over(built, explainer, dataset, tmp_path):
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / "a"
    _lock(path, {"pid": int(process.stdout), "host": _host()})  # that process has exited
    atlas = Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=12, progress=False)
    assert not (path / store.LOCK).exists()
    for key, value in load_file(state_file(path)).items():
        assert torch.equal(value, load_file(state_file(built.path))[key]), key
    assert atlas.top("features.15", 3)[0].tolist() == built.top("features.15", 3)[0].tolist()


BUILD = """
import sys, time, torch
import conceptscope as cs
torch.set_num_threads(1)
world = cs.load_world("shapes")
data = world.dataset("test", {n})


class Slow:  # the same items, slowly: the build stays in progress while the test tries a second one
    classes = data.classes

    def __len__(self):
        return len(data)

    def __getitem__(self, index):
        time.sleep(0.2)
        return data[index]


cs.Atlas.build(cs.Explainer(world.model), Slow(), {layers!r}, sys.argv[1], k={k}, batch_size=12, progress=False)
"""


@pytest.mark.slow
def test_a_concurrent_build_is_refused_and_the_first_finishes_correctly(built, explainer, dataset, tmp_path):
    path = tmp_path / "a"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-c", BUILD.format(n=N, layers=LAYERS, k=K), str(path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (path / store.LOCK).exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(AtlasBusyError, match="is building an atlas in") as error:
            Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=12, progress=False)
        assert f"process {first.pid} on host" in str(error.value)
        assert first.wait(300) == 0
    finally:
        first.kill()
    again = Atlas.load(path, explainer, dataset)
    for key, value in load_file(state_file(path)).items():
        assert torch.equal(value, load_file(state_file(built.path))[key]), key
    assert again.top("classifier.0", 3)[0].tolist() == built.top("classifier.0", 3)[0].tolist()
    assert not (path / store.LOCK).exists()


# -- atlases of an earlier version -----------------------------------------------------------------------------------
@pytest.fixture
def legacy(copy):
    """The copy rewritten as conceptscope 0.1 wrote it: format 1, no live counts, dead channels filled with samples
    0..k-1 at score 0."""
    file = state_file(copy)
    tensors = load_file(file)
    for key in [key for key in tensors if key.endswith("/live")]:
        del tensors[key]
    values, indices = tensors["top/relevance/classifier.0/values"], tensors["top/relevance/classifier.0/indices"]
    dead = ~torch.isfinite(values).any(1)
    values[dead], indices[dead] = 0.0, torch.arange(K)
    save_file(tensors, file)
    write_manifest(copy, {**manifest_of(copy), "format": "conceptscope.atlas/1"})
    return copy, dead.nonzero().flatten().tolist()


def test_an_earlier_atlas_is_upgraded_on_load(legacy, built, explainer, dataset):
    path, dead = legacy
    assert dead
    with pytest.warns(UserWarning, match="built by an earlier conceptscope.*dropped as it is read"):
        atlas = Atlas.load(path, explainer, dataset)
    for channel in range(64):
        found = atlas.top("classifier.0", channel)
        assert found[0].tolist() == built.top("classifier.0", channel)[0].tolist()  # the fake references are gone
        if channel in dead:
            assert found.live == 0 and "never relevant on this dataset" in found.reason
            assert "earlier conceptscope" in found.reason
    assert atlas.live_counts("classifier.0")[dead].tolist() == [0] * len(dead)


def test_an_unfinished_earlier_atlas_cannot_be_resumed(legacy, explainer, dataset):
    path, _ = legacy
    manifest = manifest_of(path)
    write_manifest(path, {**manifest, "progress": {**manifest["progress"], "complete": False}})
    with pytest.raises(AtlasMismatchError, match="unfinished build of an earlier conceptscope"):
        Atlas.build(explainer, dataset, LAYERS, path, k=K, batch_size=12, progress=False)


# -- dead concepts ---------------------------------------------------------------------------------------------------
def test_a_dead_concept_has_no_references_and_says_why(built):
    dead = int(torch.nonzero(built.live_counts("classifier.0") == 0)[0])
    found = built.top("classifier.0", dead)
    assert (len(found[0]), len(found[1]), found.live) == (0, 0, 0)
    assert found.reason == (f"channel {dead} of layer 'classifier.0' is never relevant on this dataset: its relevance "
                            f"is exactly 0 on all the {N} samples, so it has no references")
    references = built.references("classifier.0", dead)
    assert references == [] and references.reason == found.reason
    assert built.classes_for("classifier.0", dead) == []
    for cls in range(len(built.classes)):
        assert built.top("classifier.0", dead, cls=cls).live == 0


def test_a_live_concept_with_fewer_than_k_samples_keeps_only_those(built):
    live = built.live_counts("classifier.0")
    partial = [c for c in range(64) if 0 < live[c] < K]
    for channel in partial:
        indices, values = found = built.top("classifier.0", channel)
        assert len(indices) == live[channel] and (values != 0).all()
        assert f"only {int(live[channel])} of the {N} samples" in found.reason
    full = int(torch.nonzero(live >= K)[0])
    assert built.top("classifier.0", full).reason is None


# -- atlas queries with wrong arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, fragment", [
    (lambda a: a.top("features.99", 0), KeyError, "the atlas has no layer 'features.99'"),
    (lambda a: a.top(["features.15"], 0), KeyError, "the atlas has no layer ['features.15']"),
    (lambda a: a.top("features.15", -1), ValueError, "channel -1 is not a channel of layer 'features.15'"),
    (lambda a: a.top("features.15", 64), ValueError, "give an integer index 0..63"),
    (lambda a: a.top("features.15", 2.0), ValueError, "channel 2.0 is not a channel"),
    (lambda a: a.top("features.15", True), ValueError, "channel True is not a channel"),
    (lambda a: a.top("features.15", "3"), ValueError, "channel '3' is not a channel"),
    (lambda a: a.top("features.15", 0, "gradient"), ValueError, "the atlas has no mode 'gradient'"),
    (lambda a: a.top("features.15", 0, n=-1), ValueError, "n must be a non-negative integer or None"),
    (lambda a: a.top("features.15", 0, n=2.5), ValueError, "n must be a non-negative integer"),
    (lambda a: a.top("features.15", 0, n=True), ValueError, "n must be a non-negative integer"),
    (lambda a: a.top("features.15", 0, offset=-1), ValueError, "offset must be a non-negative integer, got -1"),
    (lambda a: a.top("features.15", 0, offset=None), ValueError, "offset must be a non-negative integer"),
    (lambda a: a.top("features.15", 0, cls="purple"), ValueError, "unknown class 'purple'"),
    (lambda a: a.top("features.15", 0, cls=7), ValueError, "unknown class 7"),
    (lambda a: a.top("features.15", 0, cls=True), ValueError, "unknown class True"),
    (lambda a: a.top("features.15", 0, "activation", cls=0), ValueError, "mode='relevance' only"),
    (lambda a: a.references("features.15", 0, n=-2), ValueError, "n must be a non-negative integer"),
    (lambda a: a.class_relevance("nope"), KeyError, "the atlas has no layer 'nope'"),
    (lambda a: a.classes_for("features.15", 99), ValueError, "channel 99 is not a channel"),
    (lambda a: a.concepts_for("purple"), ValueError, "unknown class 'purple'"),
    (lambda a: a.live_counts("features.15", "gradient"), ValueError, "the atlas has no mode 'gradient'"),
], ids=lambda value: "" if callable(value) else str(value)[:30])
def test_wrong_query_arguments(built, call, error, fragment):
    with pytest.raises(error) as raised:
        call(built)
    assert fragment in str(raised.value)


def test_paging_past_the_end_gives_an_empty_page_not_a_shifted_one(built):
    indices, _ = built.top("features.15", 0)
    assert built.top("features.15", 0, n=0)[0].tolist() == []
    assert built.top("features.15", 0, n=2, offset=len(indices))[0].tolist() == []
    assert built.top("features.15", 0, n=3, offset=1)[0].tolist() == indices[1:4].tolist()


def test_references_without_the_dataset_say_how_to_give_it(built, explainer):
    atlas = Atlas.load(built.path, explainer)
    with pytest.raises(ValueError, match=r"Atlas.load\(path, explainer, dataset=...\)"):
        atlas.references("features.15", 0)


# -- atlas builds and loads with wrong arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("options, error, fragment", [
    ({"k": 0}, ValueError, "k must be a positive integer, got 0"),
    ({"k": True}, ValueError, "k must be a positive integer, got True"),
    ({"k": 2.0}, ValueError, "k must be a positive integer, got 2.0"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": False}, ValueError, "batch_size must be a positive integer"),
    ({"checkpoint_every": -1}, ValueError, "checkpoint_every must be a positive integer"),
    ({"modes": "relevance"}, ValueError, "modes must be a non-empty subset"),
    ({"modes": []}, ValueError, "modes must be a non-empty subset"),
    ({"modes": ["gradient"]}, ValueError, "modes must be a non-empty subset"),
    ({"target": "logit"}, ValueError, "target must be one of ('label', 'prediction', 'region', 'peak')"),
    ({"layers": []}, ValueError, "no layers given"),
    ({"layers": ["features.99"]}, KeyError, "features.99"),
])
def test_wrong_build_arguments_are_refused_before_anything_is_written(explainer, dataset, tmp_path, options, error,
                                                                      fragment):
    arguments = {"layers": LAYERS, "k": K, "batch_size": 12, **options}
    layers = arguments.pop("layers")
    with pytest.raises(error) as raised:
        Atlas.build(explainer, dataset, layers, tmp_path / "a", progress=False, **arguments)
    assert fragment in str(raised.value)
    assert not (tmp_path / "a").exists()


def test_a_build_into_a_file_or_a_foreign_directory_is_refused(explainer, dataset, tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
        Atlas.build(explainer, dataset, LAYERS, tmp_path / "file", k=K, progress=False)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no atlas"):
        Atlas.build(explainer, dataset, LAYERS, tmp_path / "dir", k=K, progress=False)
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["notes.txt"]


def test_load_of_nothing_or_of_an_unfinished_atlas(copy, explainer, dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="no atlas at"):
        Atlas.load(tmp_path / "nothing", explainer, dataset)
    manifest = manifest_of(copy)
    write_manifest(copy, {**manifest, "progress": {**manifest["progress"], "samples_done": 12, "complete": False}})
    with pytest.raises(ValueError, match="is incomplete .12 of 24 samples.: run Atlas.build again"):
        Atlas.load(copy, explainer, dataset)


# -- the lens --------------------------------------------------------------------------------------------------------
def random_clip(seed=0, name="random-tiny-clip"):
    """A seeded random-weights tiny open_clip CLIP: it knows every token (no zero rows in its token embedding)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = open_clip.CLIP(64, open_clip.CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8,
                                                           image_size=32),
                               open_clip.CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
    return OpenClip(model, open_clip.SimpleTokenizer(context_length=16), name)


@pytest.fixture(scope="module")
def clip(world):
    return world.clip


@pytest.fixture(scope="module")
def lens(built, clip):
    return SemanticLens(built, clip, crop="none", progress=False)


@pytest.mark.parametrize("foundation, fragment", [
    ("ViT-B-32", "use cs.semantics.clip('ViT-B-32', pretrained=...)"),
    (None, "foundation must be a FoundationModel"),
    (42, "got int"),
    (open_clip.SimpleTokenizer, "got type"),
])
def test_a_lens_needs_a_foundation_model(built, foundation, fragment):
    with pytest.raises(TypeError, match="foundation must be a FoundationModel") as error:
        SemanticLens(built, foundation)
    assert fragment in str(error.value)


@pytest.mark.parametrize("atlas", [None, "path/to/atlas", 3])
def test_a_lens_needs_an_atlas(clip, atlas):
    with pytest.raises(TypeError, match="atlas must be a conceptscope Atlas"):
        SemanticLens(atlas, clip)


@pytest.mark.parametrize("options, error, fragment", [
    ({"layers": []}, ValueError, "layers is empty"),
    ({"layers": ["features.3"]}, KeyError, "the atlas has no layer 'features.3'"),
    ({"n": 0}, ValueError, "n must be a positive number"),
    ({"n": True}, ValueError, "n must be a positive number"),
    ({"n": 2.5}, ValueError, "n must be a positive number"),
    ({"mode": "gradient"}, ValueError, "the atlas has no mode 'gradient'"),
    ({"crop": "box"}, ValueError, "unknown crop 'box'"),
    ({"crop": "window", "window": 0}, ValueError, "window must be a fraction"),
    ({"crop": "window", "window": 1.5}, ValueError, "window must be a fraction"),
    ({"crop": "window", "window": "half"}, ValueError, "window must be a fraction"),
    ({"crop": "window", "window": True}, ValueError, "window must be a fraction"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": True}, ValueError, "batch_size must be a positive integer"),
])
def test_wrong_lens_arguments(built, clip, options, error, fragment):
    with pytest.raises(error, match=fragment):
        SemanticLens(built, clip, progress=False, **options)


UNREADABLE = ["🦄", "🦄🦄🦄", "xqzzv blorf", "ñññ", "ᚠᛇᚻ", "unknown"]


@pytest.mark.parametrize("query", UNREADABLE)
def test_a_query_the_foundation_model_cannot_read_is_refused(lens, query):
    with pytest.raises(ValueError, match="cannot read the query") as error:
        lens.search(query)
    assert "knows none of its tokens" in str(error.value) and "shapes-tiny-clip" in str(error.value)


@pytest.mark.parametrize("call", [
    lambda lens: lens.search(["red", "🦄"]),
    lambda lens: lens.label(["red", "xqzzv"]),
    lambda lens: lens.audit("red circle", valid=["🦄"]),
    lambda lens: lens.audit("red circle", valid=["red"], spurious=["blorf"]),
], ids=["one of several queries", "vocabulary entry", "valid description", "spurious description"])
def test_any_unreadable_text_among_several_is_refused(lens, call):
    with pytest.raises(ValueError, match="cannot read the"):
        call(lens)


def test_a_partly_unknown_query_warns_and_reads_the_rest(lens):
    with pytest.warns(UserWarning, match="does not know the tokens '🦄' of the query 'red 🦄'"):
        hits = lens.search("red 🦄", k=3)
    assert len(hits) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lens.search("red", k=3)  # a known query: no warning


def test_a_model_that_knows_every_token_reads_any_query(built):
    lens = SemanticLens(built, random_clip(), crop="none", progress=False)
    assert len(lens.search("🦄", k=2)) == 2


def test_a_vocabulary_entry_named_unknown_is_told_apart_from_no_label(built):
    lens = SemanticLens(built, random_clip(), crop="none", progress=False)
    labels = lens.label(["unknown", "red"], threshold=-1, margin=0)
    named = [label for label in labels if label.label == "unknown"]
    assert named and all(label.status == "labelled" for label in named)
    strict = lens.label(["unknown", "red"], threshold=2.0)
    assert {(label.label, label.status) for label in strict} == {(None, "no label"), (None, "no references")}


@pytest.mark.parametrize("call, error, fragment", [
    (lambda lens: lens.search("red", k=0), ValueError, "k must be a positive integer"),
    (lambda lens: lens.search("red", k=-3), ValueError, "k must be a positive integer"),
    (lambda lens: lens.search("red", k=True), ValueError, "k must be a positive integer"),
    (lambda lens: lens.search("red", k=2.0), ValueError, "k must be a positive integer"),
    (lambda lens: lens.search(None), TypeError, "query must be a text, an image"),
    (lambda lens: lens.search(42), TypeError, "query must be a text, an image"),
    (lambda lens: lens.search({"red"}), TypeError, "query must be a text, an image"),
    (lambda lens: lens.search([]), ValueError, "no query given"),
    (lambda lens: lens.search("   "), ValueError, "every query must be a non-empty string"),
    (lambda lens: lens.search(["red", 3]), ValueError, "every query must be a non-empty string, got 3"),
    (lambda lens: lens.search("red", templates=[]), ValueError, "templates is empty"),
    (lambda lens: lens.search("red", templates="a {} {}"), ValueError, "exactly one '{}'"),
    (lambda lens: lens.search("red", layer="features.8"), KeyError, "the lens has no layer 'features.8'"),
    (lambda lens: lens.search("red", layer=[]), ValueError, "no layer given"),
    (lambda lens: lens.label([]), ValueError, "no vocabulary entry given"),
    (lambda lens: lens.label(["red", "red"]), ValueError, "duplicate"),
    (lambda lens: lens.label(["red", ""]), ValueError, "every vocabulary entry must be a non-empty string"),
    (lambda lens: lens.scores("nope"), KeyError, "the lens has no layer 'nope'"),
    (lambda lens: lens.audit("purple", valid=["red"]), ValueError, "unknown class 'purple'"),
    (lambda lens: lens.audit("red circle"), ValueError, "no description"),
    (lambda lens: lens.audit("red circle", valid=["red"], n=0), ValueError, "n must be a positive integer"),
    (lambda lens: lens.audit("red circle", valid=["red"], n=True), ValueError, "n must be a positive integer"),
    (lambda lens: lens.compare("lens"), TypeError, "compare needs another SemanticLens"),
], ids=lambda value: "" if callable(value) else str(value)[:30])
def test_wrong_lens_call_arguments(lens, call, error, fragment):
    with pytest.raises(error) as raised:
        call(lens)
    assert fragment in str(raised.value)


def test_dead_concepts_are_never_hits_labels_or_scored(lens, built):
    dead = set(torch.nonzero(built.live_counts("classifier.0") == 0).flatten().tolist())
    assert dead
    hits = lens.search("red", layer="classifier.0", k=64)
    assert not {hit.channel for hit in hits} & dead and len(hits) == 64 - len(dead)
    statuses = {label.channel: label.status for label in lens.label(["red", "blue"], layer="classifier.0")}
    assert {c for c, status in statuses.items() if status == "no references"} == dead
    scores = lens.scores("classifier.0")
    assert all(np.isnan(scores.redundancy[c]) and scores.references[c] == 0 for c in dead)
