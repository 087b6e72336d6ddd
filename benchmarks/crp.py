"""Benchmark: K conditional heatmaps from one forward pass vs. the naive scheme (a full zennit forward+backward per
batch of 8 concepts, as the reference implementation does), on VGG16 and ResNet-18 at 224 px.

    python benchmarks/crp.py [--device cpu|cuda] [--threads 2] [--ks 1 8 32 64]

Prints a table and writes benchmarks/results/crp_<device>.json. Columns: seconds for one plain LRP heatmap, for our K
heatmaps (forward + backward, nothing cached), for the naive scheme, their ratio, the cost per extra concept relative
to one plain gradient backward pass from the layer to the input, and the extra peak memory for the K heatmaps.
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
from conceptscope.engine.reference import naive_conditional_heatmaps  # noqa: E402
from conceptscope.models import make_composite  # noqa: E402

MODELS = {"vgg16": "features.28", "resnet18": "layer4.1.conv2"}


def setup(name, device):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval().to(device)
    image = torch.randn(3, 224, 224, device=device)
    return model, image


def plain_backward_seconds(model, image, layer):
    """One ordinary gradient backward pass from ``layer``'s output to the input (no LRP), for scale."""
    recorded = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, a, o: recorded.setdefault("o", o))
    x = image[None].clone().requires_grad_()
    with torch.enable_grad():
        model(x)
    handle.remove()
    out = recorded["o"]
    grad = torch.randn_like(out)
    return timed(lambda: torch.autograd.grad(out, x, grad, retain_graph=True), repeat=5)


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
        backward = plain_backward_seconds(model, image, layer)
        target = xp.explain(image).target
        ours_by_k = {}
        for k in args.ks:
            ours = timed(lambda: conditional(xp, image, layer, k), repeat=args.repeat)
            ours_by_k[k] = ours
            naive = timed(lambda: naive_conditional_heatmaps(model, composite, image, layer, list(range(k)), target),
                          repeat=1, warmup=0)
            row = {"model": name, "layer": layer, "K": k, "lrp_heatmap_s": heatmap, "ours_s": ours,
                   "naive_s": naive, "speedup": naive / ours}
            if k > 1 and 1 in ours_by_k:
                row["extra_concept_vs_backward"] = (ours - ours_by_k[1]) / (k - 1) / backward
            rows.append(row)
        rows[-1]["extra_peak_GB"] = extra_peak_memory(xp, image, layer, max(args.ks), args.device) / 1e9
        print(rows[-1], flush=True)
    report(f"crp_{args.device}", rows, {"image_px": 224, "plain_backward_note": "gradient backward layer->input"})


if __name__ == "__main__":
    main()
