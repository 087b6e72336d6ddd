"""Tests of the foundation-model interface: the shapes world's tiny CLIP and open_clip loading offline."""

import json
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image

import conceptscope.semantics as semantics
from conceptscope.semantics import FoundationModel, FoundationUnavailableError, OpenClip
from conceptscope.world.api import ASSETS
from conceptscope.world.clip import WEIGHTS, load_clip
from conceptscope.world.concepts import MARK_QUERY
from conceptscope.world.train_clip import eval_crops, zero_shot

FRESH_SEED = 4242  # training uses only the train seed (10000); the shipped metrics use the test seed (30000)


def _no_network(*args, **kwargs):
    raise OSError("network disabled by the test")


@pytest.fixture(scope="module")
def clip(world):
    return world.clip


@pytest.fixture(scope="module")
def crops():
    return eval_crops(FRESH_SEED, n_objects=240, n_marks=20)


def test_world_clip_loads_offline_with_stable_digest(clip, monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    again = load_clip()
    assert isinstance(clip, OpenClip) and isinstance(clip, FoundationModel)
    assert clip.name == "shapes-tiny-clip" and not clip.model.training
    assert clip.digest == again.digest == json.loads((ASSETS / "clip_metrics.json").read_text())["digest"]
    assert len(clip.digest) == 64


def test_checkpoint_is_small():
    assert WEIGHTS.stat().st_size < 3_000_000


def test_embeddings_are_normalised_float32(clip):
    texts = clip.encode_texts(["red", "a red circle", "a picture of a magenta mark in the corner"])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(16, 16), (20, 48), (64, 64), (37, 23)]]
    embedded = clip.encode_images(images, batch_size=3)
    for out, n in [(texts, 3), (embedded, 4)]:
        assert out.shape == (n, clip.embed_dim) and out.dtype == torch.float32 and not out.requires_grad
        assert torch.allclose(out.norm(dim=1), torch.ones(n), atol=1e-5)
    assert torch.allclose(clip.encode_images(clip.preprocess(images)), embedded, atol=1e-6)
    assert clip.encode_texts([]).shape == (0, clip.embed_dim)


def test_preprocess_accepts_any_size_and_pil(clip):
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(16, 40), (64, 64), (16, 40), (50, 17)]]
    x = clip.preprocess(arrays + [Image.fromarray(arrays[1])])
    assert x.shape == (5, 3, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x[0], clip.preprocess([arrays[0]])[0]) and torch.equal(x[1], x[4])
    assert not torch.equal(x[0], x[2])  # two different random arrays of the same size


def test_zero_shot_attributes_on_fresh_crops(clip, crops):
    images, codes, is_mark = crops
    accuracy = zero_shot(clip, images[:240], codes[:240])
    assert accuracy["colour"] >= 0.9 and accuracy["shape"] >= 0.9 and accuracy["texture"] >= 0.9, accuracy


def test_mark_query_retrieves_mark_crops(clip, crops):
    images, _, is_mark = crops
    top = (clip.encode_texts([MARK_QUERY]) @ clip.encode_images(images).T)[0].topk(10).indices
    assert is_mark[top.numpy()].mean() >= 0.9


def test_pretrained_clip_offline_fails_fast_with_a_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    start = time.perf_counter()
    with pytest.raises(FoundationUnavailableError) as error:
        semantics.clip("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path)
    assert time.perf_counter() - start < 10
    message = str(error.value)
    assert "ViT-B-32" in message and "laion2b_s34b_b79k" in message
    assert "cache_dir" in message and "local checkpoint" in message


@pytest.mark.parametrize("name, tag", [("NoSuchNet-7", "laion2b_s34b_b79k"), ("ViT-B-32", "no_such_tag")])
def test_unknown_model_or_tag_fails(name, tag):
    with pytest.raises(FoundationUnavailableError, match="unknown") as error:
        semantics.clip(name, tag)
    assert (name if name != "ViT-B-32" else tag) in str(error.value)
