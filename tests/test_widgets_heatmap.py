"""HeatmapView: input validation, synced traits and the pixel request/reply protocol."""

import io
import logging
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from conceptscope.render import encode_png, relevance_to_rgba
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
