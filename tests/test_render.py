"""Colormap, overlay, pictures and PNG encoding: values checked against hand-derived expectations."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from conceptscope.render import COLORMAPS, encode_png, overlay, picture_of, relevance_to_rgba, to_rgb
from conceptscope.render.colormap import colour_table

BLUE, WHITE, RED = (0, 0, 255, 255), (255, 255, 255, 255), (255, 0, 0, 255)


def test_bwr_ends_and_centre():
    rgba = relevance_to_rgba(np.array([[-3.0, 0.0, 3.0]]), "bwr")
    assert rgba.dtype == np.uint8 and rgba.shape == (1, 3, 4)
    assert [tuple(p) for p in rgba[0]] == [BLUE, WHITE, RED]


def test_half_values_are_mid_colours():
    rgba = relevance_to_rgba(np.array([[-1.0, -0.5, 0.5, 1.0]]), "bwr")
    # bwr is linear blue -> white -> red: halfway is 127/128 of the way to white
    assert tuple(rgba[0, 1]) == (127, 127, 255, 255)
    assert tuple(rgba[0, 2]) == (255, 127, 127, 255)


@pytest.mark.parametrize("name", COLORMAPS)
def test_zero_is_centre_colour_and_scaling_symmetric(name):
    rng = np.random.default_rng(0)
    rel = rng.normal(size=(16, 16))
    rel[3, 4] = 0.0
    table = colour_table(name)
    rgba = relevance_to_rgba(rel, name)
    assert tuple(rgba[3, 4]) == tuple(table[128])
    # max |r| maps to an end of the table, whichever sign it has
    i = np.unravel_index(np.abs(rel).argmax(), rel.shape)
    assert tuple(rgba[i]) == tuple(table[256 if rel[i] > 0 else 0])
    # r and -r land on mirror-image entries: index distance from the centre is equal
    flipped = relevance_to_rgba(-rel, name)
    lut = {tuple(c): k for k, c in enumerate(table)}
    idx = np.vectorize(lambda *c: lut[c])(*np.moveaxis(rgba, -1, 0))
    idx_flipped = np.vectorize(lambda *c: lut[c])(*np.moveaxis(flipped, -1, 0))
    np.testing.assert_array_equal(idx - 128, 128 - idx_flipped)


def test_coldnhot_centre_is_black_and_ends():
    rgba = relevance_to_rgba(np.array([[-1.0, 0.0, 1.0]]), "coldnhot")
    assert [tuple(p) for p in rgba[0]] == [(0, 255, 255, 255), (0, 0, 0, 255), (255, 255, 255, 255)]


def test_vmax_fixes_scale_and_clips():
    rgba = relevance_to_rgba(np.array([[0.5, 2.0, -4.0]]), "bwr", vmax=1.0)
    assert tuple(rgba[0, 0]) == (255, 127, 127, 255)
    assert tuple(rgba[0, 1]) == RED
    assert tuple(rgba[0, 2]) == BLUE


def test_all_zero_map_is_centre_colour():
    rgba = relevance_to_rgba(np.zeros((4, 5)), "seismic")
    assert (rgba == colour_table("seismic")[128]).all()


@pytest.mark.parametrize(
    "rel, kwargs, match",
    [
        (np.zeros((2, 2, 1)), {}, "2-D"),
        (np.array([[np.nan, 1.0]]), {}, "NaN"),
        (np.ones((2, 2)), {"cmap": "jet"}, "unknown colormap 'jet'"),
        (np.ones((2, 2)), {"vmax": -1.0}, "vmax"),
    ],
)
def test_colormap_rejects_bad_input(rel, kwargs, match):
    with pytest.raises(ValueError, match=match):
        relevance_to_rgba(rel, **kwargs)


def test_overlay_blends_by_opacity():
    image = np.full((1, 2, 3), 100, np.uint8)
    heat = np.array([[[255, 0, 0, 255], [0, 0, 255, 255]]], np.uint8)
    out = overlay(image, heat, 0.25)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [139, 75, 75])  # 0.75*100 + 0.25*255 = 138.75
    np.testing.assert_array_equal(overlay(image, heat, 0.0), image)
    np.testing.assert_array_equal(overlay(image, heat, 1.0), heat[..., :3])
    with pytest.raises(ValueError, match="opacity"):
        overlay(image, heat, 1.5)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (5, 7, 4)])
def test_png_roundtrip_is_lossless(shape):
    img = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    data = encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), img)


@pytest.mark.parametrize("img", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8)])
def test_png_rejects_bad_images(img):
    with pytest.raises(ValueError, match="image must"):
        encode_png(img)


def test_to_rgb_repeats_grey_and_drops_alpha():
    grey = np.array([[0, 128], [255, 7]], dtype=np.uint8)
    for pixels in (grey, grey[..., None]):
        rgb = to_rgb(pixels)
        assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
        assert all(np.array_equal(rgb[..., c], grey) for c in range(3))
    rgba = np.dstack([grey, grey + 1, grey // 2, np.zeros_like(grey)])
    np.testing.assert_array_equal(to_rgb(rgba), rgba[..., :3])
    with pytest.raises(ValueError, match="uint8"):
        to_rgb(grey.astype(np.float32))


def test_picture_of_a_model_input_is_min_max_scaled_rgb():
    image = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]]])  # one grey channel: -2 .. 2 -> 0 .. 255
    picture = picture_of(image)
    assert picture.shape == (2, 2, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture[..., 0], [[0, 128], [191, 255]])  # 127.5 and 191.25 rounded
    assert (picture == picture[..., :1]).all()
    colour = picture_of(torch.stack([image[0], -image[0], image[0] * 0]))
    np.testing.assert_array_equal(colour[..., 1], [[255, 128], [64, 0]])
