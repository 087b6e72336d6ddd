"""Quantus 0.6 PixelFlipping and RegionPerturbation on saved inputs; run by a separate venv with quantus installed.

    python quantus_faithfulness.py --data inputs.npz --nets src/conceptscope/world/nets.py --weights vgg.safetensors
                                   --out result.json [--threads 1] [--batch-size 64]

Loads the shapes-world CNN from its architecture file (torch only; conceptscope itself is not installed here), the
images ``x`` (B, 3, H, W), heatmaps ``a`` (B, H, W), targets ``y`` and the settings ``pixels_per_step``,
``patch_size`` from the npz, and writes the curves and the seconds each metric call took (after a warm-up call on 8
images) to ``--out``. Settings that make Quantus compute what conceptscope computes: logits (``softmax=False``), no
normalisation or abs of the heatmaps, a constant baseline 0.0. Quantus's PixelFlipping counts ``features_in_step`` in
channel values but checks it against the pixel count (it must divide H x W), so 3 x pixels per step is refused for
RGB images: it runs with ``features_in_step`` = pixels per step, i.e. 3x as many steps, and every third point of its
curve is a point of ours.
"""
import argparse
import importlib.util
import json
import time
import warnings

import numpy as np
import quantus
import torch
from safetensors.torch import load_file


def load_model(nets, weights, classes):
    spec = importlib.util.spec_from_file_location("shapes_nets", nets)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.ShapesVGG(num_classes=classes)
    model.load_state_dict(load_file(weights))
    return model.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--nets", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    data = np.load(args.data)
    x, a, y = data["x"], data["a"], data["y"]
    pixels_per_step, patch_size = int(data["pixels_per_step"]), int(data["patch_size"])
    model = load_model(args.nets, args.weights, int(data["classes"]))
    regions = (x.shape[2] // patch_size) * (x.shape[3] // patch_size)
    metrics = {
        "pixel_flipping": quantus.PixelFlipping(features_in_step=pixels_per_step, perturb_baseline=0.0,
                                                normalise=False, abs=False, disable_warnings=True),
        "region_perturbation": quantus.RegionPerturbation(patch_size=patch_size, regions_evaluation=regions,
                                                          order="morf", perturb_baseline=0.0, normalise=False,
                                                          abs=False, disable_warnings=True),
    }
    result = {}
    for name, metric in metrics.items():
        call = dict(model=model, softmax=False, device="cpu", batch_size=args.batch_size, channel_first=True)
        metric(x_batch=x[:8], y_batch=y[:8], a_batch=a[:8, None], **call)  # warm-up
        start = time.perf_counter()
        curves = metric(x_batch=x, y_batch=y, a_batch=a[:, None], **call)
        result[name] = {"seconds": time.perf_counter() - start, "curves": np.asarray(curves).tolist()}
    with open(args.out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
