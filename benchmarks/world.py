"""Figures of the shapes world's shipped models: test accuracy on fresh images (a seed never used in training), the
share of positive LRP relevance on the evidence objects vs. their share of the image area, and how closely heatmaps
sum to the explained logit (default EpsilonPlusFlat rules, and the same rules without biases, which conserve).

    python benchmarks/world.py [--n 1000] [--seed 777]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from zennit.composites import EpsilonPlusFlat

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.models import canonizers_for  # noqa: E402
from conceptscope.world.evaluation import relevance_in_masks  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = cs.load_world("shapes")
    dataset = world.dataset("test", n=args.n, seed=args.seed)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([dataset[i][1] for i in range(len(dataset))])
    masks = np.stack([dataset.evidence_mask(i) for i in range(len(dataset))])
    rows = []
    for arch in ("vgg", "resnet"):
        model = world.load_model(arch)
        with torch.no_grad():
            logits = model(images)
        start = time.perf_counter()
        heatmaps = torch.cat([cs.Explainer(model).heatmap(chunk) for chunk in images.split(200)])
        seconds = time.perf_counter() - start
        inside, area = relevance_in_masks(heatmaps, masks)
        explained = logits.max(1).values
        conserving = cs.Explainer(model, EpsilonPlusFlat(zero_params="bias", canonizers=canonizers_for(model)))
        sums = torch.cat([conserving.heatmap(chunk).flatten(1).sum(1) for chunk in images.split(200)])
        rows.append({
            "model": arch,
            "test_accuracy": float((logits.argmax(1) == labels).float().mean()),
            "relevance_in_evidence": float(inside.mean()),
            "evidence_area": float(area.mean()),
            "ratio": float(inside.mean() / area.mean()),
            "sum_vs_logit_default_rules": float(((heatmaps.flatten(1).sum(1) - explained).abs()
                                                 / explained.abs()).median()),
            "sum_vs_logit_bias_free": float(((sums - explained).abs() / explained.abs()).max()),
            "heatmaps_per_s": len(images) / seconds,
        })
    report("world", rows, {"n": args.n, "seed": args.seed})


if __name__ == "__main__":
    main()
