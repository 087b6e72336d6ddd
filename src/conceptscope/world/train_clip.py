"""Reproduce the shapes world's tiny CLIP (``assets/shapes_clip.safetensors``) and ``assets/clip_metrics.json``.

    python -m conceptscope.world.train_clip

SemanticLens embeds reference crops (boxes around objects or parts of them, 16..64 px, any
aspect) and matches them to short texts ("red", "a red circle", "striped", "a magenta mark in
the corner"). So each batch mixes such crops, paired with texts naming a random subset of the
object's attributes, crops around the corner mark with mark texts, and whole images with their
captions. The ground truth says which text fits which image, so the contrastive loss uses every
fitting pair as a positive (duplicate texts are no problem) and ignores pairs that are only
partly right (a text about another object inside the crop, a shape named for a partial crop).
Deterministic: fixed seeds, deterministic algorithms, two CPU threads. Evaluated on crops of the
test split, whose seed training never uses.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ..semantics.foundation import OpenClip
from .api import ASSETS, SPLIT_SEEDS
from .clip import NAME, TEXT_CFG, WEIGHTS, build_model, load_clip, pack, tokenizer
from .concepts import COLOURS, MARK_QUERY, SHAPES, SIZES, TEXTURES
from .generator import caption, generate
from .rules import CLASSES

STEPS, BATCH, LR, LOGIT_SCALE = 1000, 128, 4e-3, 20.0
N_IMAGES, MARK_RATE = 12_000, 0.3  # pre-rendered training images, share of them with the corner mark
MIX = {"object": 0.7, "mark": 0.08, "whole": 0.22}  # kinds of samples in a batch
PARTIAL_RATE = 0.2  # object crops that cut the object ...
HIDDEN = ("shape", "size")  # ... and so show neither its shape nor its size
TEXT_RATES = {"size": 0.3, "colour": 0.4, "texture": 0.35, "shape": 0.55}  # chance that an object text names each
N_EVAL_OBJECTS, N_EVAL_MARKS = 600, 100

#: attributes in the order of an object's codes (value indices), and the zero-shot prompt of a value
ATTRIBUTES = {"size": SIZES, "colour": COLOURS, "texture": TEXTURES, "shape": SHAPES}
PROMPTS = {"colour": "{}", "shape": "a {}", "texture": "{}", "size": "{}"}
TEMPLATES = ("a picture of {}", "a photo of {}", "an image of {}", "a crop of {}")
MARK_TEXTS = ("a magenta mark in the corner", "a magenta mark in the top left corner", "a magenta mark",
              "magenta", "a corner mark", "a mark in the corner", "a magenta corner mark", "a magenta patch")
MIN_CROP = 16  # smallest crop side, like the atlas's relevance crops (a quarter of the image)
ANY, UNKNOWN, NONE = -1, -2, -3  # codes: text requires nothing / attribute not visible / no object


class Pool:
    """Rendered images with per-object boxes and attribute codes (size, colour, texture, shape)."""

    def __init__(self, seed, n, mark_rate):
        scenes = [generate(seed, i, 64, (mark_rate,) * len(CLASSES)) for i in range(n)]
        self.images = [scene.image for scene in scenes]
        self.captions = [caption(scene.objects, scene.mark is not None) for scene in scenes]
        self.mark_box = next((_box(scene.mark) for scene in scenes if scene.mark is not None), None)
        self.marked = np.array([scene.mark is not None for scene in scenes])
        self.objects = [(i, _box(obj["mask"]), [values.index(obj[a]) for a, values in ATTRIBUTES.items()])
                        for i, scene in enumerate(scenes) for obj in scene.objects]
        self.by_image = [[] for _ in scenes]
        for k, (i, _, _) in enumerate(self.objects):
            self.by_image[i].append(k)


def _box(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1


def _grow(low, high, rng, pad_max, limit=64):
    """``[low, high)`` padded by 1..pad_max px per side, grown to MIN_CROP and kept inside ``[0, limit)``."""
    low, high = low - rng.integers(1, pad_max + 1), high + rng.integers(1, pad_max + 1)
    grow = max(0, MIN_CROP - (high - low))
    low, high = low - grow // 2, high + grow - grow // 2
    shift = max(0, -low) - max(0, high - limit)
    return int(max(0, low + shift)), int(min(limit, high + shift))


def _overlaps(a, b, least=4):
    """Whether boxes ``a`` and ``b`` (top, left, bottom, right) share at least ``least`` pixels."""
    height, width = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    return height > 0 and width > 0 and height * width >= least


def object_crop(pool, k, rng, partial=False):
    """A crop around object ``k`` (or a random part of it), like a relevance-cropped reference, and its box."""
    i, (top, left, bottom, right), _ = pool.objects[k]
    if partial:
        height, width = bottom - top, right - left
        axes = rng.integers(3)  # cut the height, the width or both
        cut_h = max(2, int(height * rng.uniform(0.4, 0.85))) if axes != 1 else height
        cut_w = max(2, int(width * rng.uniform(0.4, 0.85))) if axes != 0 else width
        top, left = top + rng.integers(0, height - cut_h + 1), left + rng.integers(0, width - cut_w + 1)
        bottom, right = top + cut_h, left + cut_w
    top, bottom = _grow(top, bottom, rng, 10)
    left, right = _grow(left, right, rng, 10)
    return pool.images[i][top:bottom, left:right], (top, left, bottom, right)


def mark_crop(pool, i, rng):
    """A crop around the corner mark of image ``i`` and its box."""
    top, left, bottom, right = pool.mark_box
    top, bottom = _grow(top, bottom, rng, 12)
    left, right = _grow(left, right, rng, 12)
    return pool.images[i][top:bottom, left:right], (top, left, bottom, right)


def object_text(rng, codes, partial):
    """A short text naming a random non-empty subset of the object's attributes, and its requirement codes."""
    chosen = set()
    while not chosen:
        chosen = {name for name, p in TEXT_RATES.items() if rng.random() < p and not (partial and name in HIDDEN)}
    words = [values[code] for (name, values), code in zip(ATTRIBUTES.items(), codes) if name in chosen]
    if "shape" in chosen or rng.random() < 0.5:
        text = "a " + " ".join(words if "shape" in chosen else words + ["object"])
    else:
        text = " ".join(words)
    required = [code if name in chosen else ANY for name, code in zip(ATTRIBUTES, codes)]
    return text, required


def sample_batch(pool, rng, batch):
    """Images (uint8 crops), texts, and the (batch x batch) bool arrays of positive and ignored image-text pairs."""
    kinds = rng.choice(list(MIX), batch, p=list(MIX.values()))
    marked = np.flatnonzero(pool.marked)
    crops, texts, primary, required, contents, has_mark = [], [], [], [], [], []
    for kind in kinds:
        codes, req = [NONE] * 4, [ANY] * 4
        if kind == "object":
            k = int(rng.integers(len(pool.objects)))
            partial = rng.random() < PARTIAL_RATE
            crop, box = object_crop(pool, k, rng, partial)
            i, _, codes = pool.objects[k]
            text, req = object_text(rng, codes, partial)
            codes = [UNKNOWN if partial and a in HIDDEN else c for a, c in zip(ATTRIBUTES, codes)]
        elif kind == "mark":
            i = int(rng.choice(marked))
            crop, box = mark_crop(pool, i, rng)
            text = MARK_TEXTS[rng.integers(len(MARK_TEXTS))]
        else:
            i = int(rng.integers(len(pool.images)))
            crop, box, text = pool.images[i], (0, 0, 64, 64), pool.captions[i]
        if kind != "whole" and rng.random() < 0.3:
            text = TEMPLATES[rng.integers(len(TEMPLATES))].format(text)
        crops.append(crop)
        texts.append(text)
        primary.append(codes)
        required.append(req)
        contents.append([pool.objects[k][2] for k in pool.by_image[i] if _overlaps(pool.objects[k][1], box)])
        has_mark.append(bool(pool.marked[i]) and _overlaps(pool.mark_box, box, least=1))
    positive, ignored = _pairs(kinds, texts, primary, required, contents, has_mark)
    return crops, texts, torch.from_numpy(positive), torch.from_numpy(ignored)


def _pairs(kinds, texts, primary, required, contents, has_mark):
    """Which texts fit which images (positive) and which pairs are only partly right (ignored).

    An attribute text fits an object crop whose object has all the named attributes; it is
    ignored for a crop where only another (partly) visible object has them. A mark text fits mark
    crops and is ignored for other crops showing the mark. A caption fits whole images with it.
    """
    req = np.array(required)[None]  # 1 x T x 4

    def fits(codes):  # N x 4 -> N x T
        return ((req == ANY) | (np.array(codes)[:, None] == req)).all(-1)

    attribute_text, mark, whole = (kinds == "object")[None], kinds == "mark", kinds == "whole"
    positive = attribute_text & fits(primary)
    inside = np.zeros_like(positive)
    for slot in range(max(map(len, contents))):
        inside |= fits([objects[slot] if slot < len(objects) else [NONE] * 4 for objects in contents])
    ignored = attribute_text & inside & ~positive
    positive |= mark[:, None] & mark[None]
    ignored |= np.array(has_mark)[:, None] & ~mark[:, None] & mark[None]
    caption_id = np.unique(texts, return_inverse=True)[1]
    positive |= whole[:, None] & whole[None] & (caption_id[:, None] == caption_id[None])
    return positive, ignored


def contrastive_loss(image_features, text_features, scale, positive, ignored):
    """Symmetric InfoNCE with soft targets: uniform over all positive pairs, ignored pairs masked out."""
    logits = (scale * image_features @ text_features.T).masked_fill(ignored, float("-inf"))
    targets = positive.float()
    image_loss = -(targets / targets.sum(1, keepdim=True) * logits.log_softmax(1).masked_fill(~positive, 0)).sum(1)
    text_loss = -(targets / targets.sum(0, keepdim=True) * logits.log_softmax(0).masked_fill(~positive, 0)).sum(0)
    return (image_loss.mean() + text_loss.mean()) / 2


def vocabulary(tokenize) -> torch.Tensor:
    """Sorted token ids that training texts can contain (padding, start and end of text included)."""
    values = [value for values in ATTRIBUTES.values() for value in values]
    words = [*TEMPLATES, *MARK_TEXTS, "a object on the left , and right", *values]
    return tokenize(words).unique()


def train(pool, steps=STEPS, batch=BATCH, lr=LR, seed=0):
    """Train a fresh tiny CLIP on a compact vocabulary; returns it and the token ids of its embedding rows."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokenize = tokenizer()
    token_ids = vocabulary(tokenize)
    compact = torch.full((TEXT_CFG["vocab_size"],), -1, dtype=torch.long)
    compact[token_ids] = torch.arange(len(token_ids))
    model = build_model(len(token_ids))
    model.logit_scale.data.fill_(np.log(LOGIT_SCALE))
    preprocess = OpenClip(model, tokenize, NAME).preprocess  # the torch preprocessing used at inference
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    for step in range(steps):
        crops, texts, positive, ignored = sample_batch(pool, rng, batch)
        tokens = compact[tokenize(texts)]
        assert (tokens >= 0).all(), "a training text uses a token outside vocabulary()"
        image_features = F.normalize(model.encode_image(preprocess(crops)), dim=-1)
        text_features = F.normalize(model.encode_text(tokens), dim=-1)
        loss = contrastive_loss(image_features, text_features, model.logit_scale.exp().clamp(max=100),
                                positive, ignored)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 50 == 0:
            print(f"  step {step + 1}/{steps} loss {loss.item():.4f} scale {model.logit_scale.exp().item():.1f}",
                  flush=True)
    return model.eval(), token_ids


def eval_crops(seed=SPLIT_SEEDS["test"], n_objects=N_EVAL_OBJECTS, n_marks=N_EVAL_MARKS):
    """Fresh crops: one whole-object crop per unmarked image of ``seed``, then mark crops; attribute codes per crop.

    Returns ``(crops, codes, is_mark)``; codes is an (N, 4) array (size, colour, texture, shape), -3 for mark crops.
    """
    rng = np.random.default_rng(seed)
    crops, codes = [], []
    objects = Pool(seed, n_objects, 0.0)
    for i in range(n_objects):
        k = objects.by_image[i][rng.integers(len(objects.by_image[i]))]
        crops.append(object_crop(objects, k, rng)[0])
        codes.append(objects.objects[k][2])
    if n_marks:
        marks = Pool(seed + 1, n_marks, 1.0)
        crops += [mark_crop(marks, i, rng)[0] for i in range(n_marks)]
        codes += [[NONE] * 4] * n_marks
    return crops, np.array(codes), np.arange(len(crops)) >= n_objects


def zero_shot(model, crops, codes, template="{}"):
    """Accuracy of picking each crop's attribute value among all values by text similarity, per attribute."""
    features = model.encode_images(crops)
    accuracy = {}
    for a, (name, values) in enumerate(ATTRIBUTES.items()):
        prompts = [template.format(PROMPTS[name].format(value)) for value in values]
        predicted = (features @ model.encode_texts(prompts).T).argmax(1).cpu().numpy()
        accuracy[name] = round(float((predicted == codes[:, a]).mean()), 4)
    return accuracy


def retrieval(model, crops, codes, is_mark, k=10):
    """Precision@k of each single-attribute query (and the mark query) over all crops."""
    features = model.encode_images(crops)
    queries, relevant = [], []
    for a, (name, values) in enumerate(ATTRIBUTES.items()):
        for v, value in enumerate(values):
            queries.append(PROMPTS[name].format(value))
            relevant.append(codes[:, a] == v)
    queries.append(MARK_QUERY)
    relevant.append(is_mark)
    top = (model.encode_texts(queries) @ features.T).topk(k, dim=1).indices.cpu().numpy()
    return {query: round(float(hits[rows].mean()), 3) for query, hits, rows in zip(queries, relevant, top)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    start, cpu_start = time.perf_counter(), time.process_time()
    pool = Pool(SPLIT_SEEDS["train"], N_IMAGES, MARK_RATE)
    print(f"rendered {N_IMAGES} images, {len(pool.objects)} objects in {time.perf_counter() - start:.1f} s", flush=True)
    model, token_ids = train(pool, steps=args.steps)
    train_seconds = time.perf_counter() - start
    ASSETS.mkdir(exist_ok=True)
    save_file(pack(model, token_ids), WEIGHTS)
    shipped = load_clip()  # evaluate what ships: fp16, reduced vocabulary
    crops, codes, is_mark = eval_crops()
    with torch.no_grad():
        metrics = {
            "steps": args.steps, "batch": BATCH, "lr": LR, "train_images": N_IMAGES, "train_seed": SPLIT_SEEDS["train"],
            "eval_seed": SPLIT_SEEDS["test"], "eval_object_crops": N_EVAL_OBJECTS, "eval_mark_crops": N_EVAL_MARKS,
            "checkpoint_bytes": WEIGHTS.stat().st_size, "vocabulary_tokens": len(token_ids), "digest": shipped.digest,
            "zero_shot_accuracy": zero_shot(shipped, crops[:N_EVAL_OBJECTS], codes[:N_EVAL_OBJECTS]),
            "zero_shot_accuracy_template": zero_shot(shipped, crops[:N_EVAL_OBJECTS], codes[:N_EVAL_OBJECTS],
                                                     TEMPLATES[0]),
            "retrieval_precision_at_10": retrieval(shipped, crops, codes, is_mark),
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.perf_counter() - start, 1),
            "total_cpu_seconds": round(time.process_time() - cpu_start, 1),
        }
    (ASSETS / "clip_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
