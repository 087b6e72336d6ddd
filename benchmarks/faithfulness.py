"""Benchmark: pixel flipping and region perturbation of conceptscope against Quantus 0.6 on the same inputs.

    python benchmarks/faithfulness.py --reference-python /work/refvenvs/quantus-trust/bin/python
                                      [--images 200] [--rounds 3] [--threads 1]

200 shapes-world test images (64 px), LRP heatmaps of the shapes VGG for its predictions, 64 pixels per step of
pixel flipping (64 steps) and 8x8 regions one at a time (64 steps), MoRF, baseline 0.0, target logits. Quantus runs in
its own venv (``benchmarks/reference/quantus_faithfulness.py``; quantus must not share a process with conceptscope).
The two sides take turns (``_common.in_turn``; ours, Quantus, ours, ...) for ``--rounds`` rounds, ours after a warm-up
on 8 images (each Quantus run is a fresh process), idle OpenMP threads sleeping; the table gives best, median and
spread of the seconds per metric and the largest difference between the curves (Quantus's region
perturbation values are our ``score(0) - score(k)``; its pixel flipping counts channel values, so to remove 64 pixels
per step it takes 3 steps of 64 channel values, and every third point of its curve is a point of our deletion curve —
it also runs 3x as many forward passes for that curve, which the speed-up includes).
Writes benchmarks/results/faithfulness.json.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from _common import OwnSeconds, Timing, in_turn, report, sleeping_threads, speedup  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.evaluation import pixel_flipping  # noqa: E402
from conceptscope.world import nets  # noqa: E402

REFERENCE = Path(__file__).parent / "reference" / "quantus_faithfulness.py"
PIXELS_PER_STEP, PATCH = 64, 8


def ours(model, x, a, y):
    """Seconds and curves of our two metrics, as Quantus reports them."""
    result = {}
    start = time.perf_counter()
    flipping = pixel_flipping(model, x, a, y, steps=x.shape[2] * x.shape[3] // PIXELS_PER_STEP, baseline=0.0)
    result["pixel_flipping"] = {"seconds": time.perf_counter() - start, "curves": flipping.scores[:, 1:]}
    start = time.perf_counter()
    regions = pixel_flipping(model, x, a, y, patch_size=PATCH, steps=(x.shape[2] // PATCH) * (x.shape[3] // PATCH),
                             baseline=0.0)
    result["region_perturbation"] = {"seconds": time.perf_counter() - start,
                                     "curves": regions.scores[:, :1] - regions.scores[:, 1:]}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", required=True, help="python of a venv with quantus 0.6 and safetensors")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sleeping_threads()
    torch.set_num_threads(args.threads)
    world = cs.load_world("shapes")
    dataset = world.dataset("test", n=args.images)
    x = torch.stack([dataset[i][0] for i in range(args.images)])
    explainer = cs.Explainer(world.model)
    attribution = explainer.attribute(x)
    a, y = attribution.heatmaps, torch.tensor(attribution.targets)
    ours(world.model, x[:8], a[:8], y[:8])  # warm-up (each Quantus run is a fresh process: nothing to warm)
    timings = {"ours": {}, "quantus": {}}
    found = {}

    def side(name, run):
        """A side of the comparison: runs both metrics, records their seconds, returns their total."""
        def timed_run():
            found[name] = run()
            for metric, value in found[name].items():
                timings[name].setdefault(metric, []).append(value["seconds"])
            return OwnSeconds(sum(value["seconds"] for value in found[name].values()))
        return timed_run

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_file(world.model.state_dict(), tmp / "vgg.safetensors")
        np.savez(tmp / "inputs.npz", x=x.numpy(), a=a.numpy(), y=y.numpy(), pixels_per_step=PIXELS_PER_STEP,
                 patch_size=PATCH, classes=len(world.classes))

        def quantus():
            subprocess.run([args.reference_python, str(REFERENCE), "--data", str(tmp / "inputs.npz"), "--nets",
                            nets.__file__, "--weights", str(tmp / "vgg.safetensors"), "--out", str(tmp / "q.json"),
                            "--threads", str(args.threads)], check=True)
            return json.loads((tmp / "q.json").read_text())
        in_turn({"ours": side("ours", lambda: ours(world.model, x, a, y)), "quantus": side("quantus", quantus)},
                args.rounds, warmup=0)
    mine, theirs = found["ours"], found["quantus"]
    rows = []
    for metric in ("pixel_flipping", "region_perturbation"):
        reference = np.asarray(theirs[metric]["curves"])
        if metric == "pixel_flipping":
            reference = reference[:, 2::3]  # after 3 steps of 64 channel values: 64 whole pixels more
        difference = np.abs(np.asarray(mine[metric]["curves"]) - reference)
        scale = np.abs(reference).max()
        o, q = Timing(timings["ours"][metric]), Timing(timings["quantus"][metric])
        rows.append({"metric": metric, "images": args.images, "steps": difference.shape[1], **o.columns("ours"),
                     **q.columns("quantus"), **speedup(q, o, "speed-up"),
                     "max |diff|": float(difference.max()), "max |diff| / max |value|": float(difference.max() / scale),
                     "curves differing > 1e-4": int((difference.max(1) > 1e-4).sum())})
    report("faithfulness", rows, {"rounds": args.rounds, "threads": args.threads})


if __name__ == "__main__":
    main()
