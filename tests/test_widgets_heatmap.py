"""HeatmapView: input validation, synced traits and the pixel request/reply protocol."""

import io
import logging
import threading

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image

from conceptscope.render import encode_png, relevance_to_rgba, top_mask
from conceptscope.render.colormap import colour_table
from conceptscope.widgets import HeatmapView, _bundle

H, W = 32, 48


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


@pytest.fixture
def relevance():
    return np.random.default_rng(1).normal(size=(H, W)).astype(np.float32)


@pytest.fixture
def view(image, relevance):
    view = HeatmapView(image, relevance)
    view.sent = []
    view.send = lambda content, buffers=None: view.sent.append(content)
    return view


def click(view, **message):
    """Deliver a custom message the way ipywidgets does, through the widget's comm handler."""
    view._handle_msg({"content": {"data": {"method": "custom", "content": message}}, "buffers": []})
    return view.sent[-1] if view.sent else None


# --- construction and synced state -------------------------------------------------------------

def test_traits_hold_png_of_image_and_colormapped_relevance(image, relevance):
    view = HeatmapView(image, relevance, colormap="seismic", opacity=0.3)
    np.testing.assert_array_equal(decode(view.image_png), image)
    np.testing.assert_array_equal(decode(view.heatmap_png), relevance_to_rgba(relevance, "seismic", alpha=True))
    assert (view.colormap, view.opacity) == ("seismic", 0.3)
    assert view.colormaps[0] == "bwr" and "coldnhot" in view.colormaps
    assert view.last_result == {}


def test_binary_traits_travel_as_buffers(view):
    state = view.get_state()
    assert isinstance(state["image_png"], (bytes, memoryview))
    assert isinstance(state["heatmap_png"], (bytes, memoryview))


def test_accepts_torch_tensors(image, relevance):
    view = HeatmapView(torch.from_numpy(image), torch.from_numpy(relevance).requires_grad_())
    np.testing.assert_array_equal(decode(view.image_png), image)


@pytest.mark.parametrize(
    "make_image, make_relevance, kwargs, match",
    [
        (lambda i: i.astype(np.float32), None, {}, r"image must be a uint8 array of shape \(H, W, 3\); got float32"),
        (lambda i: i.transpose(2, 0, 1), None, {}, r"got uint8 array of shape \(3, 32, 48\)"),
        (lambda i: i.tolist(), None, {}, "numpy array or torch tensor; got list"),
        (None, lambda r: r[:, :-1], {}, r"relevance must be a float array of shape \(32, 48\)"),
        (None, lambda r: (r * 10).astype(np.int64), {}, "got int64 array"),
        (None, lambda r: np.where(r > 1, np.nan, r), {}, "NaN or infinite"),
        (None, None, {"colormap": "jet"}, "colormap must be one of bwr"),
        (None, None, {"opacity": 1.5}, r"opacity must be a number in \[0, 1\]"),
        (None, None, {"opacity": "0.5"}, "opacity must be"),
    ],
)
def test_rejects_bad_inputs(image, relevance, make_image, make_relevance, kwargs, match):
    img = make_image(image) if make_image else image
    rel = make_relevance(relevance) if make_relevance else relevance
    with pytest.raises(ValueError, match=match):
        HeatmapView(img, rel, **kwargs)


def test_colormap_change_recolours(view, relevance):
    view.colormap = "coldnhot"
    np.testing.assert_array_equal(decode(view.heatmap_png), relevance_to_rgba(relevance, "coldnhot", alpha=True))


def test_set_heatmap_rerenders_and_answers_with_new_values(view, relevance):
    view.set_heatmap(-2 * relevance)
    np.testing.assert_array_equal(decode(view.heatmap_png), relevance_to_rgba(-2 * relevance, "bwr", alpha=True))
    reply = click(view, type="pixel", id=1, x=3, y=4)
    assert reply["value"] == pytest.approx(-2 * float(relevance[4, 3]))
    with pytest.raises(ValueError, match="shape"):
        view.set_heatmap(np.zeros((W, H), np.float32))


def test_missing_bundle_gives_clear_error(monkeypatch, tmp_path, image, relevance):
    monkeypatch.setattr(_bundle, "STATIC", tmp_path)
    with pytest.raises(_bundle.MissingBundleError, match=r"npm ci && npm run build"):
        HeatmapView(image, relevance)


def test_bundle_is_self_contained():
    text = (_bundle.STATIC / "heatmap.js").read_text()
    assert "import " not in text and "import(" not in text and "http" not in text
    assert "export" in text


# --- pixel requests ----------------------------------------------------------------------------

def test_pixel_request_replies_with_relevance(view, relevance):
    reply = click(view, type="pixel", id="v1:7", x=5, y=9)
    assert reply == {"type": "pixel_result", "id": "v1:7", "x": 5, "y": 9, "value": float(relevance[9, 5])}
    assert view.last_result == reply
    corner = click(view, type="pixel", id=8, x=W - 1, y=H - 1, extra="ignored")
    assert corner["value"] == float(relevance[H - 1, W - 1])


@pytest.mark.parametrize(
    "message, error",
    [
        ({"type": "pixel", "id": 3, "y": 1}, "'pixel' message lacks the field 'x'"),
        ({"type": "pixel", "id": 3, "x": "1", "y": 1}, "'pixel' message: field 'x' must be int; got str '1'"),
        ({"type": "pixel", "id": 3, "x": 1.0, "y": 1}, "'pixel' message: field 'x' must be int; got float 1.0"),
        ({"type": "pixel", "id": 3, "x": True, "y": 1}, "'pixel' message: field 'x' must be int; got bool True"),
        ({"type": "pixel", "id": 3, "x": W, "y": 0}, f"pixel ({W}, 0) is outside the {W}x{H} image"),
        ({"type": "pixel", "id": 3, "x": 0, "y": -1}, f"pixel (0, -1) is outside the {W}x{H} image"),
        ({"type": "paint", "id": 3}, "unknown message type 'paint' (known: pixel, region)"),
        ({"id": 3, "x": 1}, "a message must be a JSON object with a string field 'type'"),
    ],
)
def test_malformed_requests_with_id_get_error_reply(view, caplog, message, error):
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        reply = click(view, **message)
    assert reply == {"type": "error", "id": 3, "message": error}
    assert view.last_result == reply
    assert any("rejected" in r.message and error in r.message for r in caplog.records)


@pytest.mark.parametrize(
    "message",
    [{"type": "pixel", "x": 1, "y": 1}, {"type": "pixel", "id": None, "x": 1, "y": 1},
     {"type": "pixel", "id": False, "x": 1, "y": 1}, {"type": "nope"}],
)
def test_malformed_requests_without_usable_id_are_only_logged(view, caplog, message):
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        assert click(view, **message) is None
    assert any("rejected" in r.message for r in caplog.records)
    assert click(view, type="pixel", id=1, x=0, y=0)["type"] == "pixel_result"


def test_non_object_message_is_logged(view, caplog):
    with caplog.at_level(logging.WARNING, logger="conceptscope.widgets"):
        view._on_message(view, ["pixel", 1, 2], [])
    assert view.sent == []
    assert "JSON object" in caplog.text


def test_exception_in_handler_becomes_error_reply_and_widget_keeps_working(view, relevance, caplog):
    view.relevance_at = lambda x, y: 1 / 0
    with caplog.at_level(logging.ERROR, logger="conceptscope.widgets"):
        reply = click(view, type="pixel", id=11, x=1, y=2)
    assert reply == {"type": "error", "id": 11, "message": "ZeroDivisionError: division by zero"}
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "request 11 failed" in record.message and record.exc_info[0] is ZeroDivisionError
    del view.relevance_at
    assert click(view, type="pixel", id=12, x=1, y=2)["value"] == float(relevance[2, 1])


def test_requests_from_another_thread_see_consistent_state(image):
    """Replies and the heatmap stay consistent while cells change the map (subshell threads)."""
    maps = [np.full((H, W), float(k), np.float32) for k in range(1, 6)]
    view = HeatmapView(image, maps[0])
    replies = []
    view.send = lambda content, buffers=None: replies.append(content)
    stop = threading.Event()

    def ask():
        i = 0
        while not stop.is_set():
            i += 1
            view._on_message(view, {"type": "pixel", "id": i, "x": i % W, "y": i % H}, [])

    def recolour():
        k = 0
        while not stop.is_set():
            k += 1
            view.colormap = ("bwr", "seismic", "coolwarm")[k % 3]

    threads = [threading.Thread(target=ask), threading.Thread(target=recolour)]
    for t in threads:
        t.start()
    for k in range(200):
        view.set_heatmap(maps[k % 5] * (1 if k % 2 else -1))
    stop.set()
    for t in threads:
        t.join()
    values = {r["value"] for r in replies}
    assert all(r["type"] == "pixel_result" for r in replies) and len(replies) > 0
    assert values <= {s * float(k) for k in range(1, 6) for s in (1, -1)}
    final = view.relevance
    np.testing.assert_array_equal(decode(view.heatmap_png), relevance_to_rgba(final, view.colormap, alpha=True))
    assert view.heatmap_png == encode_png(relevance_to_rgba(final, view.colormap, alpha=True))


def test_colour_bar_state_follows_the_maps_and_the_colormap():
    from conceptscope.render.colormap import colour_table

    relevance = np.zeros((8, 8))
    relevance[2, 3], relevance[5, 5] = 0.5, -0.25
    view = HeatmapView(np.zeros((8, 8, 3), np.uint8), relevance, logit=2.0)
    assert view.scales == {"heatmap": {"max": 0.5, "sum": 0.25}} and view.logit == 2.0
    np.testing.assert_array_equal(decode(view.colorbar_png)[0], colour_table("bwr")[:, :3])
    view.set_concept(relevance * 4, "features.15 #3")
    assert view.scales["concept"] == {"max": 2.0, "sum": 1.0}
    view.colormap = "seismic"
    np.testing.assert_array_equal(decode(view.colorbar_png)[0], colour_table("seismic")[:, :3])


# -- the displays: overlay, side by side, contour ----------------------------------------------------------------------
# The 5 x 5 map of tests/js/canvas.test.js: its 9 largest values (>= 5) form the block at rows 1-3, columns 1-3.
HAND = np.array([[0, 1, -2, 1, 0], [1, 7, 9, 8, -1], [0, 6, 9, 7, 2], [-3, 5, 8, 6, 1], [0, 1, 2, 0, -4]], float)


def test_top_mask_is_the_top_percent_of_positive_relevance_computed_by_hand():
    block = np.zeros((5, 5), bool)
    block[1:4, 1:4] = True
    np.testing.assert_array_equal(top_mask(HAND, 36), block)  # ceil(0.36 * 25) = 9 pixels
    np.testing.assert_array_equal(top_mask(HAND, 4), HAND == 9)  # ceil(1) = 1 pixel: both 9s (a tie) are in
    np.testing.assert_array_equal(top_mask(HAND, 100), HAND > 0)  # never a pixel without positive relevance
    assert not top_mask(-np.abs(HAND), 50).any()


def test_contour_traits_hold_the_top_percent_mask_in_the_outline_colour(image, relevance):
    view = HeatmapView(image, relevance, overlay="contour", contour_percent=5, colormap="seismic")
    mask = decode(view.contour_png)
    np.testing.assert_array_equal(mask[..., 3] == 255, top_mask(relevance, 5))
    assert (mask[..., 3] == 255).sum() == np.ceil(0.05 * H * W)
    assert mask[top_mask(relevance, 5)][0, :3].tolist() == colour_table("seismic")[-1, :3].tolist()
    view.contour_percent = 50
    np.testing.assert_array_equal(decode(view.contour_png)[..., 3] == 255, top_mask(relevance, 50))
    assert view.concept_contour_png == b""
    view.set_concept(-relevance, "c")
    np.testing.assert_array_equal(decode(view.concept_contour_png)[..., 3] == 255, top_mask(-relevance, 50))
    view.colormap = "bwr"
    assert decode(view.concept_contour_png)[top_mask(-relevance, 50)][0, :3].tolist() == [255, 0, 0]


@pytest.mark.parametrize("trait, value, error, match", [
    ("overlay", "blend", ValueError, "overlay must be one of 'overlay', 'side-by-side', 'contour'; got 'blend'"),
    ("overlay", None, ValueError, "overlay must be one of"),
    ("contour_percent", 0, ValueError, r"contour_percent must be in \(0, 100\] .*got 0"),
    ("contour_percent", 100.5, ValueError, r"contour_percent must be in \(0, 100\]"),
    ("contour_percent", True, TypeError, "contour_percent must be a number in"),
    ("contour_percent", "10", TypeError, "contour_percent must be a number in"),
])
def test_bad_displays_are_refused_with_what_is_allowed(image, relevance, trait, value, error, match):
    with pytest.raises(error, match=match):
        HeatmapView(image, relevance, **{trait: value})
    view = HeatmapView(image, relevance)
    with pytest.raises(traitlets.TraitError):
        setattr(view, trait, value)
    assert (view.overlay, view.contour_percent) == ("overlay", 10.0)


def test_the_view_switches_the_display_and_nothing_else_new(view):
    view.set_state({"overlay": "side-by-side"})
    assert view.overlay == "side-by-side" and view.error == ""
    view.set_state({"overlay": "sideways"})
    assert view.overlay == "side-by-side" and "overlay must be one of" in view.error
    view.set_state({"contour_percent": 50})
    assert view.contour_percent == 10 and "may not set 'contour_percent'" in view.error


def test_figure_draws_the_display_shown(image, relevance):
    import matplotlib

    matplotlib.use("Agg")
    view = HeatmapView(image, relevance, overlay="contour", contour_percent=20)
    ax = view.figure().axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), image)
    assert len(ax.collections) == 1
    view.overlay = "side-by-side"
    assert view.figure().axes[0].images[0].get_array().shape[1] > 2 * W
