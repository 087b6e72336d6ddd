"""Benchmark: atlas build throughput, all layers in one pass vs. one pass per layer; and how often the RelMax
references of concept channels in the shapes world show that concept.

    python benchmarks/atlas.py [--device cpu|cuda] [--threads 2] [--repeat 3] [--vgg-repeat 1] [--skip-vgg]
                               [--concept-samples 512]

Speed (writes benchmarks/results/atlas_<device>.json): samples/s of a full build (streaming, top-k merge, class
statistics, final checkpoint) of torchvision VGG16 (random weights, 224 px, 16 synthetic images) and the shapes CNN
(64 px, 256 images), recording 1 layer, 4 layers in one pass, and the naive scheme of one build per layer (4 passes);
median of ``--repeat`` runs (``--vgg-repeat`` for VGG16, minutes per run on CPU). Target: 4 layers in one pass cost at
most 1.3x one layer. CPU seconds are reported next to wall seconds: on a shared machine they vary far less.

Concepts (writes benchmarks/results/atlas_concepts.json): for each colour, shape and texture of the shapes world, the
channel of a layer whose activation best separates images with and without the concept (ground-truth masks); the share
of its top-16 RelMax references whose image contains the concept, whose relevance crop box contains it, and the share of
all images containing it (the base rate).
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, timed  # noqa: E402

import conceptscope as cs  # noqa: E402
from conceptscope.atlas import Atlas  # noqa: E402
from conceptscope.world import load_world  # noqa: E402
from conceptscope.world.concepts import COLOURS, SHAPES, TEXTURES  # noqa: E402


def build_seconds(explainer, dataset, layers, batch_size, repeat):
    """Median wall and CPU seconds of a fresh build into a new directory (CPU time: this process's work, which
    other processes on a shared machine disturb less than the wall time)."""
    cpu = []

    def run():
        start = time.process_time()
        with tempfile.TemporaryDirectory() as path:
            Atlas.build(explainer, dataset, layers, path, k=16, batch_size=batch_size, checkpoint_every=10 ** 6,
                        progress=False)
        cpu.append(time.process_time() - start)
    return timed(run, repeat=repeat, warmup=0), statistics.median(cpu)


def speed_rows(name, explainer, dataset, layers, batch_size, repeat):
    batch = torch.stack([dataset[i][0] for i in range(batch_size)])
    explainer.attribute(batch, None, layers)  # warm-up: allocator, kernels' first calls
    one = build_seconds(explainer, dataset, layers[-1:], batch_size, repeat)
    four = build_seconds(explainer, dataset, layers, batch_size, repeat)
    passes = [build_seconds(explainer, dataset, [layer], batch_size, repeat) for layer in layers]
    naive = tuple(sum(times) for times in zip(*passes))
    rows = []
    for scheme, (wall, cpu) in (("1 layer", one), ("4 layers, one pass", four), ("4 layers, 4 passes", naive)):
        rows.append({"model": name, "scheme": scheme, "seconds": wall, "samples/s": len(dataset) / wall,
                     "vs 1 layer": wall / one[0], "cpu s": cpu, "cpu vs 1 layer": cpu / one[1]})
    return rows


def speed(args, device):
    rows = []
    world = load_world("shapes")
    shapes = cs.Explainer(world.model.to(device))
    rows += speed_rows("shapes CNN 64px", shapes, world.dataset("test", 256), ["features.4", "features.8",
                       "features.11", "features.15"], 64, args.repeat)
    if not args.skip_vgg:
        torch.manual_seed(0)
        vgg = cs.Explainer(torchvision.models.vgg16(weights=None).eval().to(device))
        images = TensorDataset(torch.randn(16, 3, 224, 224), torch.randint(0, 1000, (16,)))
        rows += speed_rows("VGG16 224px", vgg, images, ["features.14", "features.21", "features.24", "features.28"],
                           8, args.vgg_repeat)
    report(f"atlas_{device.type}", rows, {"device": device.type})


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
    parser.add_argument("--concept-samples", type=int, default=512)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    speed(args, device)
    concepts(args, device)


if __name__ == "__main__":
    main()
