"""Figures of the shapes world's shipped models: test accuracy on fresh images (a seed never used in training), the
share of positive LRP relevance on the evidence objects vs. their share of the image area, how closely heatmaps
sum to the explained logit (CNNs: default EpsilonPlusFlat rules, and the same rules without biases, which conserve;
ViT: AttnLRP, whose softmax rule and constants absorb part by design), and the share of the positive relevance of the
top-3 CRP concepts' conditional heatmaps on the evidence (a layer near the output; first ``--n-concepts`` images).

    python benchmarks/world.py [--n 1000] [--seed 777] [--n-concepts 200] [--arch vgg resnet vit]
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
from conceptscope.world.grading import top_concepts_on_evidence  # noqa: E402

#: per model: the composite its heatmaps use, and the layer whose top concepts are graded
EXPLAINED = {"vgg": (None, "features.15"), "resnet": (None, "layer3.0.conv2"), "vit": ("attn_lrp", "blocks.3.mlp.fc2")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--n-concepts", type=int, default=200)
    parser.add_argument("--arch", nargs="+", default=list(EXPLAINED), choices=list(EXPLAINED))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = cs.load_world("shapes")
    dataset = world.dataset("test", n=args.n, seed=args.seed)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor([dataset[i][1] for i in range(len(dataset))])
    masks = np.stack([dataset.evidence_mask(i) for i in range(len(dataset))])
    rows = []
    for arch in args.arch:
        model = world.load_model(arch)
        composite, layer = EXPLAINED[arch]
        with torch.no_grad():
            logits = model(images)
        explainer = cs.Explainer(model, composite)
        start = time.perf_counter()
        heatmaps = torch.cat([explainer.heatmap(chunk) for chunk in images.split(200)])
        seconds = time.perf_counter() - start
        inside, area = relevance_in_masks(heatmaps, masks)
        explained = logits.max(1).values
        sums = None
        if arch != "vit":  # the ViT's constants (class token, position embeddings) are more than biases
            conserving = cs.Explainer(model, EpsilonPlusFlat(zero_params="bias", canonizers=canonizers_for(model)))
            sums = torch.cat([conserving.heatmap(chunk).flatten(1).sum(1) for chunk in images.split(200)])
        shares, _ = top_concepts_on_evidence(explainer, world.dataset("test", n=args.n_concepts, seed=args.seed), layer)
        rows.append({
            "model": arch,
            "test_accuracy": float((logits.argmax(1) == labels).float().mean()),
            "relevance_in_evidence": float(inside.mean()),
            "evidence_area": float(area.mean()),
            "ratio": float(inside.mean() / area.mean()),
            "sum_vs_logit_default_rules": float(((heatmaps.flatten(1).sum(1) - explained).abs()
                                                 / explained.abs()).median()),
            "sum_vs_logit_bias_free": None if sums is None else float(((sums - explained).abs()
                                                                       / explained.abs()).max()),
            "heatmaps_per_s": len(images) / seconds,
            "concept_layer": layer,
            **{f"top{k + 1}_concept_on_evidence": float(shares[:, k].mean()) for k in range(shares.shape[1])},
        })
    report("world", rows, {"n": args.n, "seed": args.seed, "n_concepts": args.n_concepts})


if __name__ == "__main__":
    main()
