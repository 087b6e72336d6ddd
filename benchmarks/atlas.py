"""Benchmark: atlas build throughput, all layers in one pass vs. one pass per layer; and how often the RelMax
references of concept channels in the shapes world show that concept.

    python benchmarks/atlas.py [--device cpu|cuda] [--threads 2] [--repeat 3] [--vgg-repeat 1] [--skip-vgg]
                               [--skip-vit | --vit-only]
                               [--concept-samples 512] [--vgg-samples 16]
                               [--reference-python /work/refvenvs/crp/bin/python [--reference-repeat 3]
                                [--reference-only]]

Speed (writes benchmarks/results/atlas_<device>.json): samples/s of a full build (streaming, top-k merge, class
statistics, final checkpoint) of torchvision VGG16 (random weights, 224 px, 16 synthetic images) and the shapes CNN
(64 px, 256 images), recording each of 4 layers alone, the 4 in one pass, and the naive scheme of one build per layer
(4 passes); the builds take turns (``_common.in_turn``) for ``--repeat`` rounds (``--vgg-repeat`` for VGG16, minutes
per run on CPU) after a warm-up round, and the rows give best, median and spread. The backward pass stops
at the lowest recorded layer, so the 4 layers in one pass are compared with the lowest alone (target: at most 1.3x).
CPU seconds are reported next to wall seconds: on a shared machine they vary far less. The shapes ViT (AttnLRP, its 4
block outputs in one pass) is built in turn with the shapes CNN's 4 layers, on the same 256 images (``--vit-only``: only
that, into benchmarks/results/atlas_vit_<device>.json).

Concepts (writes benchmarks/results/atlas_concepts.json): for each colour, shape and texture of the shapes world, the
channel of a layer whose activation best separates images with and without the concept (ground-truth masks); the share
of its top-16 RelMax references whose image contains the concept, whose relevance crop box contains it, and the share of
all images containing it (the base rate).

Reference (``--reference-python``, CPU only): the same VGG16, images, k, batch size and thread count built by
zennit-crp's ``FeatureVisualization.run`` (``benchmarks/reference/zennit_crp_featvis.py``, run by that python, e.g. a
separate venv with zennit-crp, which pins zennit <= 0.4.6), for 1 layer and for the 4 layers. Our build and the
reference's run take turns (``_common.in_turn``: a warm-up round, then ``--reference-repeat`` rounds per scheme) so
that load from other jobs on a shared machine hits both alike, with idle OpenMP threads sleeping in both processes
(``OMP_WAIT_POLICY=PASSIVE``); the rows give best, median and spread of both and "vs reference" = the reference's
seconds over ours on best and median (target: >= 2), and the same for median CPU seconds. The rows join the speed
table; with ``--reference-only`` nothing else is measured and they go to
benchmarks/results/atlas_reference_<device>.json.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from _common import OwnSeconds, Timing, in_turn, report, sleeping_threads, speedup  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.atlas import Atlas  # noqa: E402
from conceptscope.world import load_world  # noqa: E402
from conceptscope.world.concepts import COLOURS, SHAPES, TEXTURES  # noqa: E402

REFERENCE = Path(__file__).parent / "reference" / "zennit_crp_featvis.py"
VGG_LAYERS = ["features.14", "features.21", "features.24", "features.28"]
VGG_BATCH = 8
K = 16


def build(explainer, dataset, layers, batch_size, cpu):
    """A function running a fresh build into a new directory that appends its CPU seconds to ``cpu`` (this process's
    work, which other processes on a shared machine disturb less than the wall time)."""
    def run():
        start = time.process_time()
        with tempfile.TemporaryDirectory() as path:
            Atlas.build(explainer, dataset, layers, path, k=K, batch_size=batch_size, checkpoint_every=10 ** 6,
                        progress=False)
        cpu.append(time.process_time() - start)
    return run


def speed_rows(name, explainer, dataset, layers, batch_size, rounds):
    """Seconds of a build recording ``layers`` (lowest first) in one pass, against each layer alone and their sum
    (one pass per layer), all builds in turn for ``rounds`` rounds after a warm-up round. The backward pass stops at
    the lowest recorded layer, so "vs 1 layer" compares with that layer alone: what recording the others costs on
    top."""
    cpu = {layer: [] for layer in [*layers, "all"]}
    sides = {layer: build(explainer, dataset, [layer], batch_size, cpu[layer]) for layer in layers}
    sides["all"] = build(explainer, dataset, layers, batch_size, cpu["all"])
    times = in_turn(sides, rounds)
    cpu = {side: statistics.median(found[-rounds:]) for side, found in cpu.items()}  # the warm-up round left out
    times["passes"] = Timing(map(sum, zip(*(times[layer].times for layer in layers))))
    cpu["passes"] = sum(cpu[layer] for layer in layers)
    one = times[layers[0]]
    rows = []
    for scheme, side in ((f"1 layer ({layers[0]}, lowest)", layers[0]), (f"1 layer ({layers[-1]}, deepest)",
                         layers[-1]), ("4 layers, one pass", "all"), ("4 layers, 4 passes", "passes")):
        timing = times[side]
        rows.append({"model": name, "scheme": scheme, **timing.columns(""), "samples/s": len(dataset) / timing.median,
                     "vs 1 layer (median)": timing.median / one.median, "vs 1 layer (best)": timing.best / one.best,
                     "cpu s": cpu[side], "cpu vs 1 layer": cpu[side] / cpu[layers[0]]})
    return rows


def vgg16(device, samples):
    """VGG16 with random weights and ``samples`` random 224 px images with random labels, made exactly as
    benchmarks/reference/zennit_crp_featvis.py makes them (same seed and order: same weights and images)."""
    torch.manual_seed(0)
    vgg = cs.Explainer(torchvision.models.vgg16(weights=None).eval().to(device))
    images = TensorDataset(torch.randn(samples, 3, 224, 224), torch.randint(0, 1000, (samples,)))
    return vgg, images


def reference_run(python, layers, samples, threads, cpu, info):
    """zennit-crp's FeatureVisualization.run, from the reference script run by ``python``: its own wall seconds (an
    :class:`OwnSeconds`); its CPU seconds are appended to ``cpu``, its report stored in ``info``."""
    command = [python, str(REFERENCE), "--layers", ",".join(layers), "--n", str(samples), "--batch", str(VGG_BATCH),
               "--k", str(K), "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"reference run failed ({' '.join(command)}):\n{result.stderr[-3000:]}")
    info.update(json.loads(result.stdout.strip().splitlines()[-1]))
    cpu.append(info["cpu_seconds"])
    return OwnSeconds(info["seconds"])


def reference_rows(args, device):
    """Ours vs zennit-crp's FeatureVisualization on VGG16, 1 layer and 4 layers, in turn for ``--reference-repeat``
    rounds after a warm-up round."""
    vgg, images = vgg16(device, args.vgg_samples)
    threads = torch.get_num_threads()
    rows, info, rounds = [], {}, args.reference_repeat
    for scheme, layers in (("1 layer", VGG_LAYERS[-1:]), ("4 layers, one pass", VGG_LAYERS)):
        ours_cpu, their_cpu = [], []
        times = in_turn({"ours": build(vgg, images, layers, VGG_BATCH, ours_cpu),
                         "zennit-crp": lambda: reference_run(args.reference_python, layers, len(images), threads,
                                                             their_cpu, info)}, rounds)
        ours, theirs = times["ours"], times["zennit-crp"]
        cpu, ref_cpu = statistics.median(ours_cpu[-rounds:]), statistics.median(their_cpu[-rounds:])
        rows.append({"model": "VGG16 224px", "scheme": f"{scheme} vs zennit-crp", **ours.columns(""),
                     "samples/s": len(images) / ours.median, "cpu s": cpu, **theirs.columns("reference"),
                     "reference samples/s": len(images) / theirs.median, "reference cpu s": ref_cpu,
                     **speedup(theirs, ours, "vs reference"), "cpu vs reference": ref_cpu / cpu})
    meta = {"reference": "zennit-crp FeatureVisualization.run", "reference python": args.reference_python,
            "reference torch": info["torch"], "zennit-crp": info["zennit_crp"], "samples": len(images),
            "batch": VGG_BATCH, "k": K, "threads": threads, "rounds": rounds}
    return rows, meta


def speed(args, device):
    rows = []
    world = load_world("shapes")
    shapes = cs.Explainer(world.model.to(device))
    rows += speed_rows("shapes CNN 64px", shapes, world.dataset("test", 256), ["features.4", "features.8",
                       "features.11", "features.15"], 64, args.repeat)
    meta = {"device": device.type}
    if not args.skip_vit:
        rows += vit_rows(args, device)
    if not args.skip_vgg:
        vgg, images = vgg16(device, args.vgg_samples)
        rows += speed_rows("VGG16 224px", vgg, images, VGG_LAYERS, VGG_BATCH, args.vgg_repeat)
        if args.reference_python:
            found, reference_meta = reference_rows(args, device)
            rows += found
            meta.update(reference_meta)
    report(f"atlas_{device.type}", rows, meta)


SHAPES_CNN_LAYERS = ["features.4", "features.8", "features.11", "features.15"]
SHAPES_VIT_LAYERS = ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]


def vit_rows(args, device):
    """Images/s of a full build of the shapes ViT (AttnLRP, its 4 block outputs in one pass) next to the shapes CNN
    (its 4 layers of :func:`speed`, one pass), 256 test images, batch 64: the two builds in turn for ``--repeat``
    rounds after a warm-up round."""
    world = load_world("shapes")
    dataset = world.dataset("test", 256)
    cpu = {"cnn": [], "vit": []}
    sides = {"cnn": build(cs.Explainer(world.model.to(device)), dataset, SHAPES_CNN_LAYERS, 64, cpu["cnn"]),
             "vit": build(cs.Explainer(world.vit.to(device), "attn_lrp"), dataset, SHAPES_VIT_LAYERS, 64, cpu["vit"])}
    times = in_turn(sides, args.repeat)
    rows = []
    for side, name, layers in (("cnn", "shapes CNN 64px", SHAPES_CNN_LAYERS),
                               ("vit", "shapes ViT 64px (attn_lrp)", SHAPES_VIT_LAYERS)):
        timing = times[side]
        rows.append({"model": name, "scheme": f"4 layers, one pass ({', '.join(layers)}); CNN and ViT in turn",
                     **timing.columns(""), "samples/s": len(dataset) / timing.median,
                     "samples/s (best)": len(dataset) / timing.best,
                     "cpu s": statistics.median(cpu[side][-args.repeat:]),
                     "vs CNN (median)": timing.median / times["cnn"].median})
    return rows


def concept_channel(activation, present):
    """The channel whose activation maximum separates images with (``present``) and without the concept best."""
    separation = (activation[present].mean(0) - activation[~present].mean(0)) / (activation.std(0) + 1e-9)
    return int(separation.argmax())


def concepts(args, device):
    world = load_world("shapes")
    dataset = world.dataset("test", args.concept_samples)
    explainer = cs.Explainer(world.model.to(device))
    layers = ["features.11", "features.15"]
    activations = {layer: [] for layer in layers}
    for start in range(0, len(dataset), 64):
        batch = range(start, min(start + 64, len(dataset)))
        attribution = explainer.attribute(torch.stack([dataset[i][0] for i in batch]), None, layers)
        for layer in layers:
            activations[layer].append(attribution.activations[layer].flatten(2).amax(2).cpu())
    masks = [dataset.masks(i) for i in range(len(dataset))]
    rows = []
    with tempfile.TemporaryDirectory() as path:
        atlas = Atlas.build(explainer, dataset, layers, path, k=16, batch_size=64, progress=False)
        for layer in layers:
            activation = torch.cat(activations[layer]).numpy()
            for group, names in (("colour", COLOURS), ("shape", SHAPES), ("texture", TEXTURES)):
                in_image, in_crop, base = [], [], []
                for concept in names:
                    present = np.array([m[concept].any() for m in masks])
                    channel = concept_channel(activation, present)
                    for reference in atlas.references(layer, channel, n=16):
                        mask = masks[reference.index][concept]
                        top, left, bottom, right = reference.box or (0, 0, *mask.shape)
                        in_image.append(mask.any())
                        in_crop.append(mask[top:bottom, left:right].any())
                    base.append(present.mean())
                rows.append({"layer": layer, "concepts": group, "refs in image": float(np.mean(in_image)),
                             "refs in crop": float(np.mean(in_crop)), "base rate": float(np.mean(base))})
    report("atlas_concepts", rows, {"samples": len(dataset), "references per concept": 16})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--vgg-repeat", type=int, default=1)
    parser.add_argument("--skip-vgg", action="store_true")
    parser.add_argument("--skip-vit", action="store_true", help="no shapes ViT vs shapes CNN builds")
    parser.add_argument("--vit-only", action="store_true",
                        help="only the shapes ViT vs shapes CNN builds (to results/atlas_vit_<device>.json)")
    parser.add_argument("--concept-samples", type=int, default=512)
    parser.add_argument("--vgg-samples", type=int, default=16, help="random 224 px images for the VGG16 builds")
    parser.add_argument("--reference-python", default=None,
                        help="python of a venv with zennit-crp: also time its FeatureVisualization on the same VGG16")
    parser.add_argument("--reference-repeat", type=int, default=3, help="rounds of ours and the reference in turn")
    parser.add_argument("--reference-only", action="store_true", help="measure only ours vs the reference")
    args = parser.parse_args()
    if args.reference_python:
        sleeping_threads()
    if args.reference_python and args.device != "cpu":
        parser.error("--reference-python compares on CPU only (--device cpu)")
    if args.reference_only and not args.reference_python:
        parser.error("--reference-only needs --reference-python")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.vit_only:
        report(f"atlas_vit_{device.type}", vit_rows(args, device), {"device": device.type, "rounds": args.repeat})
        return
    if args.reference_only:
        rows, meta = reference_rows(args, device)
        report(f"atlas_reference_{device.type}", rows, {"device": device.type, **meta})
        return
    speed(args, device)
    concepts(args, device)


if __name__ == "__main__":
    main()
