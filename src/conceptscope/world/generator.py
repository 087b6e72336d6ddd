"""Procedural drawing of one shapes-world image with its per-object ground truth.

An image is a function of ``(seed, index)`` only (``np.random.default_rng([seed, index])``),
so any item of any dataset can be regenerated on demand, identically, in well under a
millisecond. The class is drawn first (uniformly), then one or two objects that satisfy its
rule are planted and distractors are added that satisfy neither this rule nor any rule of
higher priority. Objects never overlap, so every object mask is exactly its visible pixels.
Object colours are bright and saturated; the background is a dim, nearly grey gradient with
noise, so the two are never confused.
"""

from dataclasses import dataclass

import numpy as np

from .concepts import COLOURS, SHAPES, SIZES, TEXTURES
from .rules import RULES, classify

#: base RGB of the object colours (each object gets a small random jitter)
COLOUR_RGB = {
    "red": (0.90, 0.12, 0.10),
    "green": (0.15, 0.78, 0.18),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.88, 0.12),
}
#: RGB of the spurious corner mark (magenta: unlike any object colour)
MARK_RGB = (1.0, 0.0, 1.0)

_COLOUR_JITTER = 0.05
_PATTERN_DARKEN = 0.45  # stripes and dots are the object colour at this brightness
_RADIUS = {"small": (0.095, 0.115), "large": (0.16, 0.19)}  # half box size, fraction of image size
_GAP = 0.03  # minimum gap between object boxes, fraction of image size
_MARK_SIZE, _MARK_INSET = 0.09, 0.03  # corner mark side and inset, fraction of image size
_STRIPE_PERIOD, _DOT_PERIOD = 0.08, 0.08  # texture periods, fraction of image size
_MAX_OBJECTS = 4
_PLACEMENT_TRIES = 100


@dataclass(frozen=True)
class Scene:
    """One generated image and its ground truth.

    ``objects`` holds one dict per object (attribute name -> value, plus ``"mask"``, a bool
    HxW array of its pixels), ordered left to right; ``mark`` is the corner-mark mask or None.
    """

    image: np.ndarray
    objects: list
    label: int
    mark: np.ndarray | None


def _pick(rng, values):
    return values[rng.integers(len(values))]


def _random_object(rng, fixed=()):
    obj = {"shape": _pick(rng, SHAPES), "colour": _pick(rng, COLOURS),
           "texture": _pick(rng, TEXTURES), "size": _pick(rng, SIZES)}
    obj.update(fixed)
    return obj


def _sample_objects(rng, label):
    """Attributes of the planted objects (satisfying rule ``label``, no higher rule), then distractors."""
    n_objects = int(rng.integers(1, _MAX_OBJECTS + 1))
    n_planted = 2 if n_objects >= 2 and rng.random() < 0.3 else 1
    higher = RULES[:label]
    objects = []
    while len(objects) < n_planted:
        obj = _random_object(rng, RULES[label].conditions)
        if not any(rule.matches(obj) for rule in higher):
            objects.append(obj)
    blocking = RULES[: label + 1]
    while len(objects) < n_objects:
        obj = _random_object(rng)
        if not any(rule.matches(obj) for rule in blocking):
            objects.append(obj)
    return objects


def _place(rng, objects, size):
    """Give objects non-overlapping centres and radii, in order; drop those that do not fit.

    The first object always fits (the canvas is empty), so a planted object is never lost.
    """
    reserved = (_MARK_INSET + _MARK_SIZE + _GAP) * size  # top-left corner kept free for the mark
    gap = _GAP * size  # between boxes, and between a box and the image border
    boxes = []  # (cx, cy, r)
    placed = []
    for obj in objects:
        lo, hi = _RADIUS[obj["size"]]
        for _ in range(_PLACEMENT_TRIES):
            r = rng.uniform(lo, hi) * size
            cx, cy = rng.uniform(r + gap, size - r - gap, size=2)
            if cx - r < reserved and cy - r < reserved:
                continue
            if all(abs(cx - bx) > r + br + gap or abs(cy - by) > r + br + gap for bx, by, br in boxes):
                boxes.append((cx, cy, r))
                placed.append(dict(obj, position="left" if cx < size / 2 else "right"))
                break
    return placed, boxes


def _background(rng, size):
    """Dim, nearly grey linear gradient with uniform noise (saturation below 0.12)."""
    grey = rng.uniform(0.08, 0.40, size=(2, 1)) + rng.uniform(-0.03, 0.03, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    coords = (np.arange(size) + 0.5) / size
    t = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    t = (t - t.min()) / (t.max() - t.min())
    image = grey[0] + (grey[1] - grey[0]) * t[..., None]
    return image + rng.uniform(-0.025, 0.025, size=(size, size, 3))


def _shape_mask(shape, dx, dy, r):
    adx, ady = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return (adx <= 0.85 * r) & (ady <= 0.85 * r)
    if shape == "triangle":
        return (dy <= 0.8 * r) & (adx <= (dy + r) / 1.8)
    arm = 0.32 * r  # cross
    return ((adx <= arm) & (ady <= r)) | ((ady <= arm) & (adx <= r))


def _pattern(texture, dx, dy, size):
    """Pixels drawn in the darker shade: diagonal stripes, a grid of dots, or none."""
    if texture == "striped":
        period = _STRIPE_PERIOD * size
        return ((dx + dy) / period) % 1.0 < 0.5
    if texture == "dotted":
        period = _DOT_PERIOD * size
        u = (dx + period / 2) % period - period / 2
        v = (dy + period / 2) % period - period / 2
        return u * u + v * v <= (0.33 * period) ** 2
    return np.zeros(dx.shape, dtype=bool)


def _draw(rng, image, obj, box, size):
    """Paint one object into ``image`` and return its bool mask."""
    cx, cy, r = box
    x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, size)
    y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, size)
    dx = (np.arange(x0, x1) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1) + 0.5 - cy)[:, None]
    dx, dy = np.broadcast_arrays(dx, dy)
    local = _shape_mask(obj["shape"], dx, dy, r)
    colour = np.clip(np.array(COLOUR_RGB[obj["colour"]]) + rng.uniform(-_COLOUR_JITTER, _COLOUR_JITTER, 3), 0, 1)
    fill = np.where(_pattern(obj["texture"], dx, dy, size)[..., None], colour * _PATTERN_DARKEN, colour)
    crop = image[y0:y1, x0:x1]
    crop[local] = fill[local]
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = local
    return mask


def _draw_mark(image, size):
    start = round(_MARK_INSET * size)
    end = start + max(round(_MARK_SIZE * size), 2)
    image[start:end, start:end] = MARK_RGB
    mask = np.zeros((size, size), dtype=bool)
    mask[start:end, start:end] = True
    return mask


def generate(seed: int, index: int, size: int = 64, mark_rates=None) -> Scene:
    """Draw item ``index`` of the dataset with ``seed``.

    ``mark_rates`` (one probability per class, or None for no mark at all) decides whether the
    corner mark is drawn; that decision uses its own random stream, so the objects and the
    background do not depend on ``mark_rates``.
    """
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(len(RULES)))
    objects = _sample_objects(rng, label)
    objects, boxes = _place(rng, objects, size)
    image = _background(rng, size)
    for obj, box in zip(objects, boxes):
        obj["mask"] = _draw(rng, image, obj, box, size)
    order = np.argsort([box[0] for box in boxes], kind="stable")
    objects = [objects[k] for k in order]
    mark = None
    if mark_rates is not None and np.random.default_rng([seed, index, 1]).random() < mark_rates[label]:
        mark = _draw_mark(image, size)
    assert classify(objects) == label, "class rules and object sampling disagree"
    image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Scene(image=image, objects=objects, label=label, mark=mark)


def caption(objects, mark: bool = False) -> str:
    """English description, e.g. "a large red striped circle on the left and a small blue square on the right"."""
    phrases = []
    for obj in objects:
        texture = "" if obj["texture"] == "plain" else f" {obj['texture']}"
        phrases.append(f"a {obj['size']} {obj['colour']}{texture} {obj['shape']} on the {obj['position']}")
    if mark:
        phrases.append("a magenta mark in the top left corner")
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]

