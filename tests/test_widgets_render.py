"""Heatmap PNGs for the widgets: full size and shrunk thumbnails (area averages)."""

import io

import numpy as np
import pytest
from PIL import Image

from conceptscope.render import encode_png, heatmap_png, relevance_to_rgba, shrink


def test_shrink_area_averages_to_the_longest_side():
    rel = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    small = shrink(rel, 4)
    assert small.shape == (4, 2)
    expected = rel.reshape(4, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(small, expected, rtol=1e-6)
    assert shrink(rel, 16).shape == (8, 4)  # never enlarged


def test_shrink_keeps_the_sign_balance_of_a_224_map():
    rel = np.random.default_rng(0).normal(size=(224, 224)).astype(np.float32)
    small = shrink(rel, 64)
    assert small.shape == (64, 64)
    assert small.mean() == pytest.approx(rel.mean(), abs=1e-3)


def test_heatmap_png_is_the_colormapped_map():
    rel = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    assert heatmap_png(rel, "seismic") == encode_png(relevance_to_rgba(rel, "seismic"))
    thumb = np.asarray(Image.open(io.BytesIO(heatmap_png(np.ones((128, 64), np.float32), "bwr", size=32))))
    assert thumb.shape == (32, 16, 4)
