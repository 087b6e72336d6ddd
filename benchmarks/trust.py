"""Figures for "can the explanation be trusted?" on the shapes world: concept deletion, relevance-based pruning and
randomisation sanity checks, for both shipped CNNs.

    python benchmarks/trust.py [--images 100] [--test-images 1000] [--reference-images 140] [--threads 1]

Concept deletion: ``--images`` test images, channels switched off (zero) in the order of CRP relevance for the
prediction, of activation, or at random, after 0, 1, 2, 4, 8, 16, 32 and all channels; the area between the random and
relevance curves (and activation and relevance) over the fraction removed, in logits. Pruning (PXP): channel scores
from ``--reference-images`` validation images (their labels), global ranking over every convolution, accuracy on
``--test-images`` test images at rates 0 to 0.2 in 2 % steps and 0.3, 0.4, 0.5, and the most channels each
criterion removes within 1 point of accuracy. Sanity: cascading randomisation (top layer down) for LRP, gradient,
gradient x input and an edge detector (a control that ignores the model) on 50 images, similarity to the original
after the last step, and the random-logit SSIM. Writes benchmarks/results/trust.json and PNG figures next to it.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, report  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.evaluation import concept_deletion, pruning_curves, random_logit_check, randomisation_check  # noqa: E402

LAYERS = {"vgg": ["features.8", "features.11", "features.15", "classifier.0"],
          "resnet": ["layer2.0.conv2", "layer3.0.conv1", "layer3.0.conv2"]}


def batch(dataset):
    return (torch.stack([dataset[i][0] for i in range(len(dataset))]),
            torch.tensor([dataset.label(i) for i in range(len(dataset))]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--reference-images", type=int, default=140)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    world = cs.load_world("shapes")
    images, _ = batch(world.dataset("test", n=args.images))
    test = batch(world.dataset("test", n=args.test_images, seed=40_000))
    reference = batch(world.dataset("val", n=args.reference_images))
    rows = []
    for arch in ("vgg", "resnet"):
        model = world.load_model(arch)
        explainer = cs.Explainer(model)
        for layer in LAYERS[arch]:
            start = time.perf_counter()
            channels = explainer.layers[layer]
            curves = concept_deletion(explainer, images, layer, counts=sorted({0, 1, 2, 4, 8, 16, 32, channels}))
            curves.figure().savefig(RESULTS / f"trust_concepts_{arch}_{layer}.png", dpi=100)
            rows.append({"part": "concept deletion", "model": arch, "layer": layer, "channels": channels,
                         **{k: v for k, v in curves.summary().items() if k != "layer"},
                         "seconds": time.perf_counter() - start})
        start = time.perf_counter()
        rates = [i / 50 for i in range(11)] + [0.3, 0.4, 0.5]  # 2 % steps to 20 %, then coarser
        pruning = pruning_curves(explainer, reference, test, rates=rates, progress=False)
        pruning.figure().savefig(RESULTS / f"trust_pruning_{arch}.png", dpi=100)
        for criterion, within in pruning.tolerated(0.01).items():
            rows.append({"part": "pruning", "model": arch, "criterion": criterion, "channels total": pruning.total,
                         "channels pruned within 1 point": within["channels"], "rate": within["rate"],
                         "accuracy at rates 0, .1, .2, .3": [round(100 * float(pruning.accuracy[criterion][
                                                                 rates.index(rate)]), 1) for rate in (0, .1, .2, .3)],
                         "seconds": time.perf_counter() - start})
        for method in ("lrp", "gradient", "gradient_x_input", "edge"):
            start = time.perf_counter()
            result = randomisation_check(model, images[:50], method)
            if method in ("lrp", "edge"):
                result.strip(images=3).savefig(RESULTS / f"trust_sanity_{arch}_{method}.png", dpi=100)
            logit = random_logit_check(model, images[:50], method)
            last = result.table()[-1]
            rows.append({"part": "sanity (after randomising every layer)", "model": arch, "method": method,
                         **{metric: last[metric] for metric in ("spearman", "spearman_abs", "ssim", "top_k")},
                         "random-logit ssim": float(logit.similarity["ssim"].mean()),
                         "seconds": time.perf_counter() - start})
    report("trust", rows, {"images": args.images, "test_images": args.test_images,
                           "reference_images": args.reference_images, "threads": args.threads})


if __name__ == "__main__":
    main()
