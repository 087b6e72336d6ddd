"""The atlas directory: a JSON manifest plus safetensors state files, written atomically.

Layout of an atlas directory::

    manifest.json              identity (:mod:`.identity`: weights digest, dataset fingerprint, composite), settings,
                               progress
    state-<samples>.safetensors the running top-k buffers and class statistics after <samples> dataset items

The manifest is the commit record: a checkpoint writes a new state file first and the manifest naming it last, each
through a temporary file in the same directory, ``fsync`` and ``os.replace``. A reader (or a resumed build) follows
the manifest only, so it never sees a half-written or uncommitted state. No pickle is used anywhere.
"""
import json
import os
import re
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save as save_tensors

from ..errors import AtlasMismatchError

FORMAT = "conceptscope.atlas/1"
MANIFEST = "manifest.json"
_STATE = re.compile(r"state-\d+\.safetensors")
_TEMP = re.compile(r"\.(manifest\.json|state-\d+\.safetensors)\.\d+\.tmp")


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
    """The manifest of the atlas at ``path``, or None if there is none."""
    file = Path(path) / MANIFEST
    if not file.exists():
        return None
    manifest = json.loads(file.read_text())
    if manifest.get("format") != FORMAT:
        raise AtlasMismatchError(f"{file} has format {manifest.get('format')!r}; this version reads {FORMAT!r}")
    return manifest


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


def prepare_directory(path):
    """Check that ``path`` may hold a new atlas (missing, empty, or only leftovers of an interrupted first checkpoint)
    and remove those leftovers; refuse a directory holding anything else."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"atlas path {path} exists and is not a directory")
    if not path.exists():
        return
    ours = (_STATE, _TEMP)
    foreign = [entry.name for entry in path.iterdir() if not any(pattern.fullmatch(entry.name) for pattern in ours)]
    if foreign:
        raise FileExistsError(f"{path} is not empty and holds no atlas (found {', '.join(sorted(foreign)[:5])}); "
                              "choose an empty or new directory")
    for entry in path.iterdir():
        entry.unlink()


def remove_temporaries(path):
    """Delete temporary files left by writers that were killed mid-write."""
    for entry in Path(path).iterdir():
        if _TEMP.fullmatch(entry.name):
            entry.unlink()
