"""Benchmark: K conditional heatmaps from one forward pass vs. the naive scheme (a full zennit forward+backward per
batch of 8 concepts, as the reference implementation does), on VGG16 and ResNet-18 at 224 px.

    python benchmarks/crp.py [--device cpu|cuda] [--threads 2] [--ks 1 8 32 64]

Prints a table and writes benchmarks/results/crp_<device>.json. Columns: seconds for one plain LRP heatmap, for our K
heatmaps (forward + backward, nothing cached), for the naive scheme, their ratio; per model, the extra peak memory for
the K heatmaps and the cost per extra concept relative to one plain gradient pass from the layer to the input
(target <= 1.2x; see extra_concept_cost).
"""
import argparse
import os
import sys
import threading
import time

import torch
import torchvision

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import report, timed  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.engine.naive_crp import naive_conditional_heatmaps  # noqa: E402
from conceptscope.models import make_composite  # noqa: E402

MODELS = {"vgg16": "features.28", "resnet18": "layer4.1.conv2"}


def setup(name, device):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval().to(device)
    image = torch.randn(3, 224, 224, device=device)
    return model, image


def gradient_pass(model, image, layer, batch):
    """A function running one plain autograd gradient pass (no LRP) from ``layer``'s output to the input, for a batch
    of ``batch`` copies of ``image``: what "one backward pass" costs."""
    recorded = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, a, o: recorded.setdefault("o", o))
    x = image[None].repeat(batch, 1, 1, 1).requires_grad_()
    with torch.enable_grad():
        model(x)
    handle.remove()
    out = recorded["o"]
    grad = torch.randn_like(out)
    return lambda: torch.autograd.grad(out, x, grad, retain_graph=True)


def extra_concept_cost(xp, model, image, layer, k=16, rounds=3):
    """Seconds per extra concept, ``(t(k) - t(1)) / (k - 1)`` of ``conditional_heatmaps`` on an explained image, against
    one gradient pass of batch 1 and per sample of a batch of ``k``; all four measured in turn ``rounds`` times (the
    fastest of each kept), so that load from other jobs hits them alike."""
    explanation = xp.explain(image, layers=[layer])
    runs = {"gradient, batch 1": gradient_pass(model, image, layer, 1),
            f"gradient, batch {k}": gradient_pass(model, image, layer, k),
            "ours, K = 1": lambda: explanation.conditional_heatmaps(layer, [0]),
            f"ours, K = {k}": lambda: explanation.conditional_heatmaps(layer, list(range(k)))}
    times = {name: [] for name in runs}
    for round_ in range(rounds):
        for name, run in runs.items():
            times[name].append(timed(run, repeat=1, warmup=int(round_ == 0)))
    best = {name: min(found) for name, found in times.items()}
    extra = (best[f"ours, K = {k}"] - best["ours, K = 1"]) / (k - 1)
    return {"extra_concept_s": extra, "extra_concept_vs_gradient_b1": extra / best["gradient, batch 1"],
            f"extra_concept_vs_gradient_per_sample_b{k}": extra / (best[f"gradient, batch {k}"] / k)}


def extra_peak_memory(xp, image, layer, k, device):
    """Peak memory (bytes) above the start while computing ``k`` conditional heatmaps of an explained image:
    CUDA's allocator peak on GPU, the process' resident set sampled every millisecond on CPU."""
    explanation = xp.explain(image)
    if device == "cuda":
        torch.cuda.synchronize()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        explanation.conditional_heatmaps(layer, list(range(k)))
        return torch.cuda.max_memory_allocated() - start
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(resident_bytes())
            time.sleep(0.001)

    start = resident_bytes()
    sampler = threading.Thread(target=sample)
    sampler.start()
    explanation.conditional_heatmaps(layer, list(range(k)))
    done.set()
    sampler.join()
    return max(samples, default=start) - start


def resident_bytes():
    """The process' resident memory, from /proc."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def conditional(xp, image, layer, k):
    """Explain ``image`` (k = 0) or also compute ``k`` conditional heatmaps of ``layer``."""
    explanation = xp.explain(image)
    if k:
        explanation.conditional_heatmaps(layer, list(range(k)))
    xp._cache.clear()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, layer in MODELS.items():
        model, image = setup(name, args.device)
        xp = cs.Explainer(model)
        composite = make_composite(model)
        heatmap = timed(lambda: xp.heatmap(image), repeat=args.repeat)
        target = xp.explain(image).target
        for k in args.ks:
            ours = timed(lambda: conditional(xp, image, layer, k), repeat=args.repeat)
            naive = timed(lambda: naive_conditional_heatmaps(model, composite, image, layer, list(range(k)), target),
                          repeat=1, warmup=0)
            row = {"model": name, "layer": layer, "K": k, "lrp_heatmap_s": heatmap, "ours_s": ours,
                   "naive_s": naive, "speedup": naive / ours}
            rows.append(row)
        rows[-1]["extra_peak_GB"] = extra_peak_memory(xp, image, layer, max(args.ks), args.device) / 1e9
        rows[-1].update(extra_concept_cost(xp, model, image, layer))
        print(rows[-1], flush=True)
    report(f"crp_{args.device}", rows, {"image_px": 224, "plain_backward_note": "gradient backward layer->input"})


if __name__ == "__main__":
    main()
