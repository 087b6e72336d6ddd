"""Reference timing: zennit-crp's FeatureVisualization.run (RelMax/ActMax + RelStats/ActStats) on VGG16.

Run with the python of a separate venv that has zennit-crp (it pins zennit <= 0.4.6, so it cannot live in the
project's venv), e.g.

    python -m venv /work/refvenvs/crp && /work/refvenvs/crp/bin/pip install zennit-crp torch torchvision
    /work/refvenvs/crp/bin/python benchmarks/reference/zennit_crp_featvis.py --layers features.28 --n 16 --batch 8

The model and data are made exactly as benchmarks/atlas.py makes them (torch.manual_seed(0); torchvision VGG16 with
random weights; then n random 224 px images and random labels), so with the same torch version both sides see the
same weights and images. Composite: zennit's EpsilonPlusFlat; max_target "sum", abs_norm True (CRP's defaults);
every buffer keeps ``--k`` samples. One untimed warm-up attribution of a batch, then ``--repeat`` timed runs of a
fresh FeatureVisualization (construction, run, collecting and writing its result files into a temporary folder).
Prints one JSON line on stdout: {"impl", "layers", "n", "batch", "k", "threads", "torch", "zennit_crp", "seconds"
(median wall), "cpu_seconds" (median CPU time of this process, all threads), "runs" (wall of each), "samples/s" (n /
median wall seconds)}. CRP's own progress output goes to stderr.
"""
import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from importlib.metadata import version

import torch
import torchvision
from crp.attribution import CondAttribution
from crp.concepts import ChannelConcept
from crp.visualization import FeatureVisualization
from torch.utils.data import TensorDataset
from zennit.composites import EpsilonPlusFlat


def run_once(attribution, dataset, layers, n, batch, k):
    with tempfile.TemporaryDirectory() as path:
        start, cpu = time.perf_counter(), time.process_time()
        fv = FeatureVisualization(attribution, dataset, {layer: ChannelConcept() for layer in layers}, path=path)
        for part in (fv.RelMax, fv.ActMax, fv.RelStats, fv.ActStats):
            part.SAMPLE_SIZE = k
        with contextlib.redirect_stdout(sys.stderr):
            fv.run(EpsilonPlusFlat(), 0, n, batch_size=batch, checkpoint=500)
        return time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="features.28", help="comma-separated layer names")
    parser.add_argument("--n", type=int, default=16, help="number of images")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--k", type=int, default=16, help="samples kept per concept (CRP's SAMPLE_SIZE)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layers = args.layers.split(",")

    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    dataset = TensorDataset(torch.randn(args.n, 3, 224, 224), torch.randint(0, 1000, (args.n,)))
    attribution = CondAttribution(model, no_param_grad=True)

    images = dataset.tensors[0][:args.batch].clone().requires_grad_(True)  # warm-up, untimed
    attribution(images, [{"y": [int(t)]} for t in dataset.tensors[1][:args.batch]], EpsilonPlusFlat())

    runs = [run_once(attribution, dataset, layers, args.n, args.batch, args.k) for _ in range(args.repeat)]
    seconds = statistics.median(wall for wall, _ in runs)
    print(json.dumps({"impl": "zennit-crp FeatureVisualization", "layers": layers, "n": args.n, "batch": args.batch,
                      "k": args.k, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "zennit_crp": version("zennit-crp"), "seconds": seconds,
                      "cpu_seconds": statistics.median(cpu for _, cpu in runs), "runs": [wall for wall, _ in runs],
                      "samples/s": args.n / seconds}))


if __name__ == "__main__":
    main()
