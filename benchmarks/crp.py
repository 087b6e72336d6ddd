"""Benchmark: K conditional heatmaps of one image (one forward pass, K concepts folded into the batch) against
zennit-crp 0.6's batched ``CondAttribution.generate`` at its best batch size, on VGG16 ``features.28`` and ResNet-18
``layer4.1.conv2`` with random weights (seeded alike on both sides).

    python benchmarks/crp.py --reference-python /work/refvenvs/crp/bin/python [--sizes 112 224] [--k 64]
                             [--models vgg16 resnet18] [--rounds 3] [--threads 2]
                             [--reference-batches 8 16 32]

zennit-crp runs in its own venv (it pins zennit <= 0.4.6), served by benchmarks/reference/zennit_crp_conditional.py,
which times only its ``generate``. For each model and image size the sides take turns (``_common.in_turn``: one
warm-up round, then ``--rounds`` rounds): ours for K and for 1 concept (each a fresh forward pass plus the backward
passes), zennit-crp for K, and a plain autograd gradient pass (no LRP) from the layer to the input for a batch of
``--gradient-batch`` copies (at most K).
Idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, both processes), so that neither side's threads spin on the
cores while the other runs. zennit-crp's batch size is the fastest of ``--reference-batches`` per concept, each run
once for one batch after a warm-up. The warm-up round also compares both sides' heatmaps (relative L2 difference).
Without ``--reference-python`` only our side and the gradient pass run.

Prints a table and writes benchmarks/results/crp_<device>.json: best, median and spread of each side, the speed-up
on best and median times, the cost per extra concept ``(t(K) - t(1)) / (K - 1)`` against the gradient pass per sample
of its batch, and the extra peak memory of our K heatmaps.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).parent))
from _common import OwnSeconds, in_turn, report, sleeping_threads, speedup  # noqa: E402

import conceptscope as cs  # noqa: E402

MODELS = {"vgg16": "features.28", "resnet18": "layer4.1.conv2"}
REFERENCE = Path(__file__).parent / "reference" / "zennit_crp_conditional.py"


def setup(name, px, device):
    """The model with random weights and a random image, seeded as the reference script seeds its own."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval().to(device)
    image = torch.randn(3, px, px).to(device)
    return model, image


class Reference:
    """zennit-crp in its own venv: a subprocess answering one timed ``generate`` per request."""

    def __init__(self, python, threads):
        self.process = subprocess.Popen([python, str(REFERENCE), "--threads", str(threads)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.info = {}

    def run(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the reference ({REFERENCE.name}) stopped; its error is above")
        self.info = json.loads(line)
        return OwnSeconds(self.info["seconds"])

    def close(self):
        self.process.stdin.close()
        self.process.wait()


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


def conditional(xp, image, layer, k):
    """``k`` conditional heatmaps of ``layer`` from a fresh forward pass (nothing cached)."""
    xp._cache.clear()
    return xp.explain(image, layers=[layer]).conditional_heatmaps(layer, list(range(k)))


def extra_peak_memory(xp, image, layer, k, device):
    """Peak memory (bytes) above the start while computing ``k`` conditional heatmaps of an explained image:
    CUDA's allocator peak on GPU, the process' resident set sampled every millisecond on CPU."""
    explanation = xp.explain(image, layers=[layer])
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


def best_batch(reference, request, batches):
    """The fastest of ``batches`` for the reference's ``generate``: each runs one batch of as many concepts (after
    one warm-up run), and the least seconds per concept wins."""
    reference.run(**request, k=batches[0], batch=batches[0])
    per_concept = {batch: reference.run(**request, k=batch, batch=batch) / batch for batch in batches}
    print(f"zennit-crp seconds per concept by batch size, {request['model']} {request['px']} px: "
          + ", ".join(f"{b}: {s:.3f} s" for b, s in per_concept.items()), file=sys.stderr, flush=True)
    return min(per_concept, key=per_concept.get)


def measure(args, name, layer, px, reference):
    model, image = setup(name, px, args.device)
    xp = cs.Explainer(model)
    k = args.k
    batch = min(k, args.gradient_batch)
    sides = {f"ours K={k}": lambda: conditional(xp, image, layer, k),
             "ours K=1": lambda: conditional(xp, image, layer, 1),
             f"gradient batch {batch}": gradient_pass(model, image, layer, batch)}
    row = {"model": name, "layer": layer, "px": px, "K": k}
    if reference:
        request = {"model": name, "layer": layer, "px": px}
        row["reference batch"] = reference_batch = best_batch(reference, request, args.reference_batches)
        request["k"] = k
        saved = Path(f"/tmp/crp_reference_{os.getpid()}.pt")
        first = {"save": str(saved)}  # the warm-up round saves the reference's heatmaps for the comparison

        def theirs():
            found = reference.run(**request, batch=reference_batch, **first)
            first.clear()
            return found
        sides[f"zennit-crp K={k}"] = theirs
    times = in_turn(sides, args.rounds)
    row.update(times[f"ours K={k}"].columns("ours"))
    if reference:
        row.update(times[f"zennit-crp K={k}"].columns("zennit-crp"))
        row.update(speedup(times[f"zennit-crp K={k}"], times[f"ours K={k}"]))
        ours, theirs_ = conditional(xp, image, layer, k), torch.load(saved)
        saved.unlink()
        row["rel diff vs zennit-crp"] = float((ours - theirs_).norm() / theirs_.norm())
    row.update(times["ours K=1"].columns("ours K=1"))
    row.update(times[f"gradient batch {batch}"].columns(f"gradient b{batch}"))
    for how in ("best", "median"):
        ours_k, ours_1 = getattr(times[f"ours K={k}"], how), getattr(times["ours K=1"], how)
        extra = (ours_k - ours_1) / (k - 1)
        row[f"extra concept s ({how})"] = extra
        row[f"extra concept / gradient per sample ({how})"] = extra / (getattr(times[f"gradient batch {batch}"],
                                                                              how) / batch)
    row["extra peak GB"] = extra_peak_memory(xp, image, layer, k, args.device) / 1e9
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 224])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-python", help="python of a venv with zennit-crp 0.6 (see the reference script)")
    parser.add_argument("--reference-batches", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--gradient-batch", type=int, default=16,
                        help="batch of the plain gradient pass (at most K; its autograd graph of VGG16 at 224 px for "
                             "64 images does not fit in 23 GB next to the reference)")
    args = parser.parse_args()
    sleeping_threads()
    torch.set_num_threads(args.threads)
    reference = Reference(args.reference_python, args.threads) if args.reference_python else None
    rows = []
    meta = {"k": args.k, "rounds": args.rounds, "warmup rounds": 1, "reference batches tried": args.reference_batches}
    try:
        for px in args.sizes:
            for name in args.models:
                rows.append(measure(args, name, MODELS[name], px, reference))
                if reference:
                    meta.update({f"reference {key}": value for key, value in reference.info.items()
                                 if key != "seconds"})
                report(f"crp_{args.device}", rows, meta)  # after each case, so that a long run keeps what it has
    finally:
        if reference:
            reference.close()


if __name__ == "__main__":
    main()
