"""Reproduce the shipped shapes-world weights and ``assets/metrics.json``.

    python -m conceptscope.world.train

Trains the VGG-style CNN and the small ResNet on the plain world and the VGG-style CNN on
the "spurious" variant, on freshly generated images (every training image is seen once); reports
accuracy on the validation split and on the test split, whose seed training never uses.
Deterministic: fixed seeds, deterministic algorithms, two CPU threads.
"""

import argparse
import json
import time

import torch
from safetensors.torch import save_file

from .api import ARCHITECTURES, ASSETS, SHIPPED_MODELS, SPLIT_SEEDS, SPURIOUS_CLASS, load_world, weights_path
from .dataset import normalize, render

STEPS, BATCH, LR = 600, 64, 3e-3
N_VAL, N_TEST = 1000, 2000


@torch.no_grad()
def predict(model, images, batch=500):
    """Predicted classes of uint8 NxHxWx3 ``images``."""
    model.eval()
    return torch.cat([model(normalize(images[k:k + batch])).argmax(1) for k in range(0, len(images), batch)])


def _rate(hits):
    return round(hits.float().mean().item(), 4)


def train(arch, images, labels, num_classes, seed, steps=STEPS, batch=BATCH, lr=LR):
    """Train a fresh ``arch`` model, one pass over the images in order, Adam with a one-cycle schedule."""
    torch.manual_seed(seed)
    model = ARCHITECTURES[arch](num_classes=num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    for step in range(steps):
        x = normalize(images[step * batch:(step + 1) * batch])
        y = labels[step * batch:(step + 1) * batch]
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 100 == 0:
            print(f"  {arch} step {step + 1}/{steps} loss {loss.item():.4f}", flush=True)
    return model.eval()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    ASSETS.mkdir(exist_ok=True)
    start = time.perf_counter()
    metrics = {"steps": args.steps, "batch": BATCH, "lr": LR, "split_seeds": SPLIT_SEEDS,
               "n_val": N_VAL, "n_test": N_TEST, "models": {}}
    marked_world = load_world("shapes", "spurious")
    test_marked, _ = render(marked_world.dataset("test", n=N_TEST, corner_mark="all"))
    spurious_index = marked_world.classes.index(SPURIOUS_CLASS)
    for variant in SHIPPED_MODELS:
        world = load_world("shapes", variant)
        train_images, train_labels = render(world.dataset("train", n=args.steps * BATCH))
        val_images, val_labels = render(world.dataset("val", n=N_VAL))
        test_images, test_labels = render(world.dataset("test", n=N_TEST))
        others = test_labels != spurious_index
        for seed, arch in enumerate(SHIPPED_MODELS[variant]):
            t0 = time.perf_counter()
            model = train(arch, train_images, train_labels, len(world.classes), seed, steps=args.steps)
            seconds = time.perf_counter() - t0
            save_file(model.state_dict(), weights_path(variant, arch))
            marked = predict(model, test_marked)
            result = {
                "parameters": sum(p.numel() for p in model.parameters()),
                "train_seconds": round(seconds, 1),
                "val_accuracy": _rate(predict(model, val_images) == val_labels),
                "test_accuracy": _rate(predict(model, test_images) == test_labels),
                "test_accuracy_with_corner_mark": _rate(marked == test_labels),
                f"corner_mark_flips_to_{SPURIOUS_CLASS.replace(' ', '_')}": _rate(marked[others] == spurious_index),
            }
            metrics["models"][weights_path(variant, arch).stem] = result
            print(weights_path(variant, arch).name, json.dumps(result), flush=True)
    metrics["total_seconds"] = round(time.perf_counter() - start, 1)
    (ASSETS / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"total {metrics['total_seconds']} s; wrote {ASSETS / 'metrics.json'}")


if __name__ == "__main__":
    main()
