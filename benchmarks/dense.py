"""Figures of the shapes world's segmenter and detector (L-CRP) on fresh images (a seed never used in training):
mean IoU and mAP@0.5, where the heatmaps of a segment and of a detection put their positive relevance (on the
object or box, on a ring of 3 px around it, elsewhere), and the context use of the plain and the spurious segmenter
on images that all carry the corner mark.

    python benchmarks/dense.py [--n 1000] [--explained 100] [--context 70] [--seed 777]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.world import grading  # noqa: E402
from conceptscope.world.dataset import render  # noqa: E402
from conceptscope.world.detection import detect, mean_average_precision, object_boxes  # noqa: E402
from conceptscope.world.segmentation import label_maps, mean_iou, predict_segments  # noqa: E402

LAYER = "backbone.features.6"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="images for mIoU and mAP")
    parser.add_argument("--explained", type=int, default=100, help="images whose heatmaps are graded")
    parser.add_argument("--context", type=int, default=70, help="marked images for the context analysis")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = cs.load_world("shapes")
    dataset = world.dataset("test", n=args.n, seed=args.seed)
    images = render(dataset)[0]
    segmenter, detector = world.load_model("segmenter"), world.load_model("detector")
    rows = [{"model": "segmenter", "metric": "mean IoU",
             "value": mean_iou(predict_segments(segmenter, images), label_maps(dataset), len(world.classes) + 1)},
            {"model": "detector", "metric": "mAP@0.5",
             "value": mean_average_precision(detect(detector, images), [object_boxes(dataset, i) for i in range(
                 len(dataset))], len(world.classes))}]
    for name, explainer, grade in (
            ("segmenter", cs.Explainer(segmenter, mean=world.mean, std=world.std), grading.grade_segments),
            ("detector", cs.Explainer(detector, output=0, mean=world.mean, std=world.std), grading.grade_detections)):
        summary = grade(explainer, dataset, n=args.explained).summary()
        rows += [{"model": name, "metric": f"relevance share {key}", "value": summary[key]} for key in (
            "inside", "around", "rest", "area_inside", "area_around")]
    spurious = cs.load_world("shapes", "spurious")
    marked = spurious.dataset("test", n=args.context, seed=args.seed, corner_mark="all")
    for name, model in (("segmenter", segmenter), ("spurious segmenter", spurious.load_model("segmenter"))):
        result = grading.segment_context(cs.Explainer(model, mean=world.mean, std=world.std), marked, LAYER, k=8)
        groups = result.per_group()
        others = [g["context"] for group, g in groups.items() if group != "green square"]
        top = result.concepts("green square")[:3]
        rows += [{"model": name, "metric": "context share, all classes", "value": result.summary()["context"]},
                 {"model": name, "metric": "context share, green square", "value": groups["green square"]["context"]},
                 {"model": name, "metric": "context share, other classes (mean)", "value": float(np.nanmean(others))},
                 {"model": name, "metric": "heatmap share outside, green square",
                  "value": groups["green square"]["heatmap_context"]},
                 {"model": name, "metric": "top-3 green-square concepts: share on the mark",
                  "value": ", ".join(f"{c['channel']}: {c['on_cue']:.2f}" for c in top)}]
    report("dense", rows, {"n": args.n, "explained": args.explained, "context": args.context, "seed": args.seed,
                           "layer": LAYER})


if __name__ == "__main__":
    main()
