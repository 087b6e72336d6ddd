"""Reference side of benchmarks/crp.py: zennit-crp 0.6's batched ``CondAttribution.generate``, K conditional heatmaps
of one image, served to the benchmark one timed run at a time so that the two sides can take turns.

Run with the python of a separate venv that has zennit-crp (it pins zennit <= 0.4.6, so it cannot live in the
project's venv), e.g.

    python -m venv /work/refvenvs/crp && /work/refvenvs/crp/bin/pip install torch torchvision zennit-crp==0.6.0

benchmarks/crp.py starts it as ``python zennit_crp_conditional.py --threads 2`` and writes one JSON request per line
on its stdin: ``{"model": "vgg16", "layer": "features.28", "px": 112, "k": 64, "batch": 16}`` times one
``generate`` over channels 0..k-1 (the model and image are built on the first request for them, exactly as
benchmarks/crp.py builds its own: ``torch.manual_seed(0)``, the torchvision model with random weights, then a random
image, so with the same torch version both sides see the same weights and image). Adding ``"save": PATH`` also writes
the heatmaps (K, H, W) there with ``torch.save``. Each request is answered by one JSON line on stdout:
``{"seconds", "torch", "zennit_crp", "zennit"}``. Composite: zennit's EpsilonPlusFlat (with its ResNet canonizer for
ResNets), the initial relevance the target logit (CRP's default), the target the largest logit.
"""
import argparse
import json
import sys
import time
from importlib.metadata import version

import torch
import torchvision
from crp.attribution import CondAttribution
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer


def setup(name, px):
    """The model, image and target, made as benchmarks/crp.py makes them."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    image = torch.randn(3, px, px)
    with torch.no_grad():
        target = int(model(image[None]).argmax())
    canonizers = [ResNetCanonizer()] if name.startswith("resnet") else []
    return CondAttribution(model, no_param_grad=True), image, target, EpsilonPlusFlat(canonizers=canonizers)


def conditional_heatmaps(setup_, layer, k, batch):
    attribution, image, target, composite = setup_
    conditions = [{layer: [channel], "y": [target]} for channel in range(k)]
    sample = image[None].clone().requires_grad_(True)
    found = [result.heatmap.detach() for result in attribution.generate(
        sample, conditions, composite, record_layer=[], batch_size=batch, verbose=False)]
    return torch.cat(found)[:k]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    built = {}
    versions = {"torch": torch.__version__, "zennit_crp": version("zennit-crp"), "zennit": version("zennit")}
    for line in sys.stdin:
        request = json.loads(line)
        key = (request["model"], request["px"])
        if key not in built:
            built[key] = setup(*key)
        start = time.perf_counter()
        heatmaps = conditional_heatmaps(built[key], request["layer"], request["k"], request["batch"])
        seconds = time.perf_counter() - start
        if request.get("save"):
            torch.save(heatmaps, request["save"])
        print(json.dumps({"seconds": seconds, **versions}), flush=True)


if __name__ == "__main__":
    main()
