"""The atlas directory: a JSON manifest plus safetensors state files, written atomically, checked when read.

Layout of an atlas directory::

    manifest.json              identity (:mod:`.identity`: weights digest, dataset fingerprint, composite), settings,
                               progress, and the name of the committed state file
    state-<samples>.safetensors the running top-k buffers and class statistics after <samples> dataset items
    build.lock                 while a build runs: the pid and host of the process building (one at a time)

The manifest is the commit record: a checkpoint writes a new state file first and the manifest naming it last, each
through a temporary file in the same directory, ``fsync`` and ``os.replace``. A reader (or a resumed build) follows
the manifest only, so it never sees a half-written or uncommitted state. Reading checks the manifest's structure, the
state file's name (a fixed pattern inside the directory: never an absolute path or ``..``) and that the state holds
every tensor the settings call for with its shape; anything else is an :class:`AtlasDamagedError` naming the file and
what to do. No pickle is used anywhere.
"""
import json
import os
import re
import socket
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors

from ..errors import AtlasMismatchError
from .state import MODES, TARGETS

FORMAT = "conceptscope.atlas/2"
#: formats read and upgraded on load: format 1 kept zero-score (dead) samples as references and counted no live ones
LEGACY_FORMATS = ("conceptscope.atlas/1",)
MANIFEST = "manifest.json"
LOCK = "build.lock"
_STATE = re.compile(r"state-\d+\.safetensors")
_MANIFEST_STATE = re.compile(r"state-\d{12}\.safetensors")  # what a manifest may name: a file of the directory
_TEMP = re.compile(r"\.(manifest\.json|state-\d+\.safetensors)\.\d+\.tmp")


class AtlasDamagedError(ValueError):
    """An atlas file (manifest or state) is unreadable, incomplete or not what an atlas writes; the message names the
    file and what to do."""


class AtlasBusyError(RuntimeError):
    """Another process is building an atlas into the same directory."""


def _rebuild(path):
    return f"delete the directory {path} and build the atlas again (Atlas.build)"


# -- atomic IO -------------------------------------------------------------------------------------------------------
def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that readers see either the old file or the complete new one."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(directory):
    """Make a rename durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path):
    """The manifest of the atlas at ``path`` (checked, see :func:`check_manifest`), or None if there is none."""
    file = Path(path) / MANIFEST
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise AtlasDamagedError(f"the atlas manifest {file} cannot be read ({type(error).__name__}: {error}); it is "
                                f"damaged or not an atlas manifest: {_rebuild(path)}") from None
    if not isinstance(manifest, dict):
        raise AtlasDamagedError(f"the atlas manifest {file} holds a JSON {type(manifest).__name__}, not an object: "
                                f"{_rebuild(path)}")
    if manifest.get("format") not in (FORMAT, *LEGACY_FORMATS):
        raise AtlasMismatchError(f"{file} has format {manifest.get('format')!r}; this version reads {FORMAT!r} (and "
                                 f"upgrades {', '.join(map(repr, LEGACY_FORMATS))})")
    check_manifest(file, manifest)
    return manifest


def _is_count(value, least=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def check_manifest(file, manifest):
    """Raise :class:`AtlasDamagedError` naming ``file`` where ``manifest`` lacks an entry or has one of the wrong kind,
    or names a state file that is not a plain ``state-<12 digits>.safetensors`` of the atlas directory."""
    def need(ok, what):
        if not ok:
            raise AtlasDamagedError(f"the atlas manifest {file} is damaged: {what}; {_rebuild(Path(file).parent)}")

    for key, kind in (("identity", dict), ("config", dict), ("progress", dict)):
        need(isinstance(manifest.get(key), kind), f"its {key!r} entry is missing or not an object")
    model = manifest["identity"].get("model")
    need(isinstance(model, dict) and isinstance(model.get("digest"), str) and isinstance(model.get("class"), str),
         "identity.model must hold the model's 'class' and weights 'digest'")
    need("composite" in manifest["identity"], "identity.composite is missing")
    dataset = manifest["identity"].get("dataset")
    need(isinstance(dataset, dict) and _is_count(dataset.get("length"), 1)
         and isinstance(dataset.get("sample_hash"), str), "identity.dataset must hold 'length' and 'sample_hash'")
    config = manifest["config"]
    layers = config.get("layers")
    need(isinstance(layers, dict) and layers and all(isinstance(name, str) and _is_count(count, 1)
                                                       for name, count in layers.items()),
         "config.layers must map layer names to channel counts")
    need(_is_count(config.get("k"), 1), "config.k must be a positive integer")
    modes = config.get("modes")
    need(isinstance(modes, list) and modes and all(mode in MODES for mode in modes) and len(set(modes)) == len(modes),
         f"config.modes must be a list of distinct modes out of {MODES}")
    need(config.get("target") in TARGETS, f"config.target must be one of {TARGETS}")
    need(_is_count(config.get("classes"), 1), "config.classes must be a positive integer")
    names = config.get("class_names")
    need(names is None or (isinstance(names, list) and len(names) == config["classes"]),
         "config.class_names must be null or one name per class")
    progress = manifest["progress"]
    need(_is_count(progress.get("samples"), 1) and _is_count(progress.get("samples_done"))
         and progress["samples_done"] <= progress["samples"] and isinstance(progress.get("complete"), bool)
         and _is_count(progress.get("batch_size"), 1), "progress must hold samples_done <= samples, complete and "
                                                       "batch_size")
    need(not progress["complete"] or progress["samples_done"] == progress["samples"],
         "progress says complete but not every sample is done")
    state = manifest.get("state")
    need(isinstance(state, str) and _MANIFEST_STATE.fullmatch(state) is not None,
         f"its 'state' entry {state!r} is not a state file name of the form 'state-<12 digits>.safetensors' (a file "
         "of the atlas directory; never a path)")


def expected_tensors(manifest):
    """``{key: (shape, dtype name)}`` of every tensor the state of ``manifest``'s settings holds."""
    config = manifest["config"]
    k, classes = config["k"], config["classes"]
    legacy = manifest["format"] in LEGACY_FORMATS
    found = {"class/counts": ((classes,), "I64")}
    for layer, channels in config["layers"].items():
        for mode in config["modes"]:
            found[f"top/{mode}/{layer}/values"] = ((channels, k), "F32")
            found[f"top/{mode}/{layer}/indices"] = ((channels, k), "I64")
            if not legacy:
                found[f"top/{mode}/{layer}/live"] = ((channels,), "I64")
        found[f"class/{layer}/relevance"] = ((channels, classes), "I64")
        found[f"class/{layer}/values"] = ((channels, classes, k), "F32")
        found[f"class/{layer}/indices"] = ((channels, classes, k), "I64")
        if not legacy:
            found[f"class/{layer}/live"] = ((channels, classes), "I64")
    return found


def check_state(path, manifest):
    """Open the committed state file of the atlas at ``path`` and check that it holds every tensor of the settings,
    with its shape and dtype; raise :class:`AtlasDamagedError` naming the file and what to do otherwise."""
    file = Path(path) / manifest["state"]
    if not file.is_file():
        raise AtlasDamagedError(f"the atlas state {file} named in {Path(path) / MANIFEST} is missing: "
                                f"{_rebuild(path)}")
    try:
        with safe_open(file, "pt") as handle:
            stored = {key: (tuple(handle.get_slice(key).get_shape()), handle.get_slice(key).get_dtype())
                      for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise AtlasDamagedError(f"the atlas state {file} is damaged ({error}): {_rebuild(path)}") from None
    for key, (shape, dtype) in expected_tensors(manifest).items():
        if key not in stored:
            raise AtlasDamagedError(f"the atlas state {file} lacks the tensor {key!r}: {_rebuild(path)}")
        if stored[key] != (shape, dtype):
            raise AtlasDamagedError(f"the atlas state {file} holds {key!r} with shape {stored[key][0]} "
                                    f"({stored[key][1]}), but the manifest's settings need {shape} ({dtype}): "
                                    f"{_rebuild(path)}")
    size = file.stat().st_size
    with open(file, "rb") as handle:  # the header's offsets must lie inside the file (a truncated file fails here)
        header = int.from_bytes(handle.read(8), "little")
        if size < 8 + header:
            raise AtlasDamagedError(f"the atlas state {file} is truncated: {_rebuild(path)}")


def commit(path, manifest, tensors):
    """Write a checkpoint: the state file named in ``manifest["state"]``, then the manifest, then drop stale files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / manifest["state"], save_tensors({key: value.contiguous().cpu() for key, value in
                                                         tensors.items()}))
    atomic_write(path / MANIFEST, json.dumps(manifest, indent=1).encode())
    for entry in path.iterdir():
        if _STATE.fullmatch(entry.name) and entry.name != manifest["state"]:
            entry.unlink()


def load_tensors(path, manifest, device="cpu"):
    """Every tensor of the committed state of the atlas at ``path``."""
    with safe_open(Path(path) / manifest["state"], "pt", device=str(device)) as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def load_slice(path, manifest, key, index):
    """``tensor[index]`` of one tensor of the committed state, read without loading the rest."""
    with safe_open(Path(path) / manifest["state"], "pt") as handle:
        return handle.get_slice(key)[index]


@contextmanager
def directory(path):
    """The atlas directory ``path``, created (with its parents) if missing for the time of the block and removed again
    if it is still empty then (a refused or failed first build leaves nothing behind); refuse a path that is not a
    directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"atlas path {path} exists and is not a directory")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if created and not any(path.iterdir()):
            path.rmdir()


def prepare_directory(path):
    """Check that the directory ``path`` may hold a new atlas (empty, or only leftovers of an interrupted first
    checkpoint, and our build lock) and remove those leftovers; refuse a directory holding anything else."""
    path = Path(path)
    ours = (_STATE, _TEMP)
    entries = [entry for entry in path.iterdir() if entry.name != LOCK]
    foreign = [entry.name for entry in entries if not any(pattern.fullmatch(entry.name) for pattern in ours)]
    if foreign:
        raise FileExistsError(f"{path} is not empty and holds no atlas (found {', '.join(sorted(foreign)[:5])}); "
                              "choose an empty or new directory")
    for entry in entries:
        entry.unlink()


def remove_temporaries(path):
    """Delete temporary files left by writers that were killed mid-write."""
    for entry in Path(path).iterdir():
        if _TEMP.fullmatch(entry.name):
            entry.unlink()


# -- one build at a time ---------------------------------------------------------------------------------------------
def _lock_owner(file):
    """``{"pid", "host"}`` of the lock ``file``, or None where it cannot be read (gone, or being written)."""
    try:
        owner = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and _is_count(owner.get("pid"), 1) else None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def build_lock(path):
    """Hold ``<path>/build.lock`` (created exclusively, holding this process's pid and host) while building; another
    build of the same directory gets :class:`AtlasBusyError`. A lock left by a process of this host that is no longer
    running (killed) is stale and taken over."""
    file = Path(path) / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    while True:
        try:
            fd = os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(file)
            if owner is not None and owner.get("host") == me["host"] and not _alive(owner["pid"]):
                file.unlink(missing_ok=True)  # stale: its builder died
                continue
            who = (f"process {owner['pid']} on host {owner.get('host')!r}" if owner is not None
                   else "another process")
            raise AtlasBusyError(f"{who} is building an atlas in {path} (lock file {file}); wait until it finishes "
                                 "(then building again with the same arguments returns its atlas), or build into "
                                 "another directory. If no such build is running, delete the lock file.") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(me))
        break
    try:
        yield
    finally:
        if _lock_owner(file) == me:
            file.unlink(missing_ok=True)
