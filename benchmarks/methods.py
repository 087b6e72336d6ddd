"""Attribution methods on the shapes world: the localisation leaderboard on fresh test images for two image seeds
(is the ranking stable?), and the speed of our batched metrics against Quantus's, measured in turn.

    python benchmarks/methods.py leaderboard [--n 200] [--seeds 1 2] [--methods ...] [--options JSON]
    python benchmarks/methods.py speed --reference-python /work/refvenvs/quantus/bin/python [--n 200] [--rounds 7]
    python benchmarks/methods.py dissection [--n 300] [--atlas-n 400]

``leaderboard`` explains each image's label with every method (defaults of ``cs.methods.METHODS``, except the
slow perturbation methods at the lighter settings of ``LIGHT``, to fit 2 x 200 images on 2 CPU cores; ``--options``
replaces them) and grades the maps against the evidence masks (objects that make the label true); it prints one
Markdown table per seed and the Kendall tau between the seeds' rankings per metric, and writes
results/methods_leaderboard.json. ``speed`` times mass accuracy, rank accuracy and pointing game on the same arrays
in both libraries, in turn (``_common.in_turn``: a warm-up round, then ``--rounds`` rounds; best, median and spread;
idle OpenMP threads sleep) (Quantus in a long-lived subprocess of its own venv that times its own pass: its public
call, and its vectorised ``evaluate_batch`` alone, without the call's input checks), and writes
results/methods_speed.json. ``dissection`` dissects the VGG's conv layers on ``n`` test images and compares the
detectors' labels (IoU >= 0.04) with the ground-truth selectivity (share of detectors that encode their label, AUC >=
0.9, and whose label is their best-AUC concept) and with SemanticLens labels (atlas of ``atlas-n`` images, the tiny
CLIP, the ground-truth test's vocabulary), and writes results/methods_dissection.json.
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

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, OwnSeconds, Timing, in_turn, report, sleeping_threads, speedup  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.evaluation import localisation  # noqa: E402
from conceptscope.world.grading import evidence_batch, leaderboard  # noqa: E402

HERE = Path(__file__).parent
#: lighter settings of the slow methods for the 2 x 200-image leaderboard (defaults: 1000 masks, stride 4, 200 samples)
LIGHT = {"rise": {"masks": 250}, "occlusion": {"stride": 8}, "lime": {"samples": 100}}


def kendall_tau(first, second):
    """Kendall's tau between two rankings of the same items (lists, best first)."""
    position = {item: k for k, item in enumerate(second)}
    pairs = [(i, j) for i in range(len(first)) for j in range(i + 1, len(first))]
    agree = sum(1 if position[first[i]] < position[first[j]] else -1 for i, j in pairs)
    return agree / len(pairs)


def run_leaderboard(args):
    world = cs.load_world("shapes")
    methods = args.methods or cs.methods.available()
    boards, seconds = {}, {}
    for seed in args.seeds:
        start = time.perf_counter()
        boards[seed] = leaderboard(world, methods, n=args.n, seed=seed, progress=False, options=args.options)
        seconds[seed] = time.perf_counter() - start
        print(f"\n### seed {seed}: {args.n} images, {seconds[seed]:.0f} s\n\n{boards[seed].to_markdown()}", flush=True)
    first, second = (boards[s] for s in args.seeds[:2])
    taus = {metric: kendall_tau(first.ranking(metric), second.ranking(metric)) for metric in first.metrics}
    print("\nKendall tau between the seeds' rankings:", {k: round(v, 3) for k, v in taus.items()})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "methods_leaderboard.json").write_text(json.dumps({
        "n": args.n, "seeds": args.seeds, "options": args.options, "seconds": seconds, "kendall_tau": taus,
        "rankings": {seed: {m: b.ranking(m) for m in b.metrics} for seed, b in boards.items()},
        "rows": {seed: b.rows for seed, b in boards.items()}}, indent=1))


def run_speed(args):
    sleeping_threads()
    world = cs.load_world("shapes")
    images, masks, labels = evidence_batch(world.dataset("test", n=args.n, seed=1))
    relevance = cs.methods.attribute(world.model, images, labels, "lrp_epsilon_plus_flat", mean=world.mean,
                                     std=world.std)
    names = ["mass_accuracy", "rank_accuracy", "pointing_game"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arrays.npz"
        np.savez(path, a=relevance.clamp_min(0).numpy(), s=masks.numpy())
        quantus = subprocess.Popen([args.reference_python, str(HERE / "reference/quantus_localisation.py"), str(path),
                                    "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        batch_only = []

        def quantus_pass():
            quantus.stdin.write("run\n")
            quantus.stdin.flush()
            whole, batch = map(float, quantus.stdout.readline().split())
            batch_only.append(batch)
            return OwnSeconds(whole)

        times = in_turn({"conceptscope": lambda: localisation(relevance, masks, names), "quantus": quantus_pass},
                        args.rounds)
        times["quantus (evaluate_batch only)"] = Timing(batch_only[-args.rounds:])  # the warm-up round left out
        quantus.stdin.close()
        quantus.wait()
    rows = [{"library": lib, "images": args.n, "best_ms": 1000 * t.best, "median_ms": 1000 * t.median,
             "spread_ms": 1000 * t.spread} for lib, t in times.items()]
    for lib in ("quantus", "quantus (evaluate_batch only)"):
        found = speedup(times[lib], times["conceptscope"])
        rows.append({"library": f"speed-up vs {lib}", "images": args.n, "best_ms": found["speedup (best)"],
                     "median_ms": found["speedup (median)"]})
    report("methods_speed", rows, {"metrics": names, "rounds": args.rounds, "warmup rounds": 1,
                                   "torch_threads": torch.get_num_threads()})


def run_dissection(args):
    from conceptscope.semantics import evaluation as semantic_truth
    from conceptscope.world.dissection import CONCEPTS, THRESHOLD, agreement, dissect
    from conceptscope.world.selectivity import object_activations, selectivity

    world = cs.load_world("shapes")
    explainer = cs.Explainer(world.model)
    layers = ["features.0", "features.4", "features.8", "features.11", "features.15"]
    data = world.dataset("test", n=args.n)
    activations = object_activations(explainer, data, layers)
    auc = selectivity(activations.activations, activations.attributes, list(CONCEPTS))
    with tempfile.TemporaryDirectory() as tmp:
        atlas = cs.Atlas.build(explainer, world.dataset("test", n=args.atlas_n, seed=31_000), layers,
                               Path(tmp) / "atlas", k=16, batch_size=50, progress=False)
        lens = cs.SemanticLens(atlas, world.clip, n=16, progress=False)
        labels = {(label.layer, label.channel): label.label
                  for label in lens.label(semantic_truth.vocabulary(world), layer=layers)}
    rows = []
    for layer in layers:
        found = dissect(explainer, data, layer)
        truth = agreement(found, auc[layer], CONCEPTS)
        detectors = [(unit, concept) for concept, units in found.detectors(THRESHOLD).items() for unit in units]
        named = [(unit, concept) for unit, concept in detectors if labels[layer, unit] is not None]
        same = sum(labels[layer, unit] == semantic_truth.phrase(concept) for unit, concept in named)
        top = found.detectors(THRESHOLD)
        rows.append({"layer": layer, "units": len(found.thresholds), "detectors": len(detectors),
                     "concepts": len(top), "most": max(top, key=lambda c: len(top[c])) if top else "",
                     "gt_encodes": truth["encodes"], "gt_same_best": truth["same_best"],
                     "lens_named": len(named), "lens_agrees": same / len(named) if named else float("nan")})
    report("methods_dissection", rows, {"n": args.n, "atlas_n": args.atlas_n, "threshold": THRESHOLD})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    board = sub.add_parser("leaderboard")
    board.add_argument("--n", type=int, default=200)
    board.add_argument("--seeds", type=int, nargs=2, default=[1, 2])
    board.add_argument("--methods", nargs="*")
    board.add_argument("--options", type=json.loads, default=LIGHT, help="JSON {method: {option: value}}")
    speed = sub.add_parser("speed")
    speed.add_argument("--reference-python", required=True, help="Python of a venv with Quantus")
    speed.add_argument("--n", type=int, default=200)
    speed.add_argument("--rounds", type=int, default=7)
    dissection = sub.add_parser("dissection")
    dissection.add_argument("--n", type=int, default=300)
    dissection.add_argument("--atlas-n", type=int, default=400)
    args = parser.parse_args()
    {"leaderboard": run_leaderboard, "speed": run_speed, "dissection": run_dissection}[args.part](args)


if __name__ == "__main__":
    main()
