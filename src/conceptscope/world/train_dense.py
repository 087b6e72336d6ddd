"""Reproduce the shipped shapes-world segmenters and detector and ``assets/dense_metrics.json``.

    python -m conceptscope.world.train_dense [--only segmenter|detector|spurious_segmenter]

Trains the segmenter and the detector on the plain world and the segmenter on the "spurious" variant (whose corner
mark co-occurs with the class "green square" in training), on freshly generated images (each seen once, drawn batch by
batch); reports mean IoU and mAP@0.5 on the test split, whose seed training never uses. Deterministic: fixed seeds,
deterministic algorithms, one CPU thread (on a shared machine two threads wait on each other far more than they
gain).
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from .api import ASSETS, DENSE_ARCHITECTURES, SPLIT_SEEDS, SPURIOUS_CLASS, load_world, weights_path
from .dataset import normalize, render
from .detection import average_precisions, detect, encode, object_boxes
from .segmentation import iou_per_class, label_maps, predict_segments, segment_classes

STEPS, BATCH, LR = 2000, 32, 3e-3
N_TEST = 500
#: (variant, model) pairs trained and shipped
TRAINED = {"segmenter": (None, "segmenter"), "detector": (None, "detector"),
           "spurious_segmenter": ("spurious", "segmenter")}


def focal_loss(logits, target):
    """CenterNet's penalty-reduced focal loss on centre heatmaps, per object."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    centres = target == 1
    positive = ((1 - p) ** 2 * torch.log(p))[centres].sum()
    negative = ((1 - target) ** 4 * p ** 2 * torch.log(1 - p))[~centres].sum()
    return -(positive + negative) / centres.sum().clamp(min=1)


def _optimise(model, steps, lr, loss_of):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    for step in range(steps):
        loss = loss_of(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 250 == 0:
            print(f"  step {step + 1}/{steps} loss {loss.item():.4f}", flush=True)
    return model.eval()


def train_segmenter(dataset, num_classes, seed, steps=STEPS, batch=BATCH, lr=LR):
    """A fresh segmenter trained with per-pixel cross-entropy, one pass over ``dataset`` in order."""
    torch.manual_seed(seed)
    model = DENSE_ARCHITECTURES["segmenter"](num_classes)

    def loss_of(step):
        rows = range(step * batch, (step + 1) * batch)
        return F.cross_entropy(model(normalize(render(dataset, rows)[0])), label_maps(dataset, rows))
    return _optimise(model, steps, lr, loss_of)


def train_detector(dataset, num_classes, seed, steps=STEPS, batch=BATCH, lr=LR):
    """A fresh detector trained with the focal loss on centre heatmaps and L1 on the box edges at centre cells."""
    torch.manual_seed(seed)
    model = DENSE_ARCHITECTURES["detector"](num_classes)
    size = dataset.size

    def loss_of(step):
        rows = range(step * batch, (step + 1) * batch)
        heat, edges, centres = map(torch.stack, zip(*(encode(*object_boxes(dataset, i), num_classes, size,
                                                             model.stride) for i in rows)))
        predicted_heat, predicted_edges = model(normalize(render(dataset, rows)[0]))
        box_loss = (predicted_edges - edges).abs().sum(1)[centres].mean()
        return focal_loss(predicted_heat, heat) + 0.1 * box_loss
    return _optimise(model, steps, lr, loss_of)


def _rounded(values):
    return [None if np.isnan(v) else round(float(v), 4) for v in values]


def evaluate_segmenter(model, world, n=N_TEST):
    """Mean IoU and IoU per class on ``n`` test images (with the corner mark on all of them too, variant "spurious")."""
    classes = segment_classes(world)
    result = {}
    for name, mark in [("", None)] + ([("_with_corner_mark", "all")] if world.variant == "spurious" else []):
        dataset = world.dataset("test", n=n, **({"corner_mark": mark} if mark else {}))
        ious = iou_per_class(predict_segments(model, render(dataset)[0]), label_maps(dataset), len(classes))
        result[f"test_mean_iou{name}"] = round(float(np.nanmean(ious)), 4)
        result[f"test_iou_per_class{name}"] = dict(zip(classes, _rounded(ious)))
    return result


def evaluate_detector(model, world, n=N_TEST):
    """mAP@0.5 and AP per class on ``n`` test images."""
    dataset = world.dataset("test", n=n)
    precisions = average_precisions(detect(model, render(dataset)[0]),
                                    [object_boxes(dataset, i) for i in range(n)], len(world.classes))
    return {"test_map_50": round(float(np.nanmean(precisions)), 4),
            "test_ap_50_per_class": dict(zip(world.classes, _rounded(precisions)))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--only", choices=list(TRAINED), action="append")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for seed, name in enumerate(TRAINED):
        if args.only and name not in args.only:
            continue
        variant, kind = TRAINED[name]
        world = load_world("shapes", variant)
        train_set = world.dataset("train", n=args.steps * BATCH)
        start = time.perf_counter()
        if kind == "segmenter":
            model = train_segmenter(train_set, len(segment_classes(world)), seed, steps=args.steps)
        else:
            model = train_detector(train_set, len(world.classes), seed, steps=args.steps)
        seconds = time.perf_counter() - start
        save_file(model.state_dict(), weights_path(variant, kind))
        result = {"parameters": sum(p.numel() for p in model.parameters()), "steps": args.steps,
                  "train_seconds": round(seconds, 1),
                  **(evaluate_segmenter if kind == "segmenter" else evaluate_detector)(model, world)}
        print(weights_path(variant, kind).name, json.dumps(result), flush=True)
        _record(weights_path(variant, kind).stem, result)


def _record(name, result):
    """Add one model's metrics to ``assets/dense_metrics.json`` (read just before, so that runs with ``--only`` in
    parallel keep each other's)."""
    path = ASSETS / "dense_metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics.update({"batch": BATCH, "lr": LR, "split_seeds": SPLIT_SEEDS, "n_test": N_TEST,
                    "spurious_class": SPURIOUS_CLASS})
    metrics.setdefault("models", {})[name] = result
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
