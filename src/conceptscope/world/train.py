"""Reproduce the shipped shapes-world weights and ``assets/metrics.json``.

    python -m conceptscope.world.train [--only vit]

Trains the VGG-style CNN, the small ResNet and the ViT on the plain world and the VGG-style CNN on
the "spurious" variant, on freshly generated images (every training image is seen once); reports
accuracy on the validation split and on the test split, whose seed training never uses.
``--only`` trains the named models (e.g. ``shapes_vit``, or ``vit`` for every variant's) and
updates only their entries of ``metrics.json``.
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
#: the ViT learns from more images: AdamW, gradients clipped, six cycles of linear warm-up then cosine decay to zero
#: (the later ones warm restarts with a fresh optimizer, each on the next fresh images)
VIT = {"batch": 64, "weight_decay": 0.05, "clip": 1.0,
       "cycles": ({"steps": 1500, "lr": 1.5e-3, "warmup": 100}, {"steps": 1000, "lr": 5e-4, "warmup": 50},
                  {"steps": 1000, "lr": 3e-4, "warmup": 50}, {"steps": 2000, "lr": 5e-4, "warmup": 50},
                  {"steps": 2000, "lr": 3e-4, "warmup": 50}, {"steps": 2000, "lr": 3e-4, "warmup": 50})}
N_VAL, N_TEST = 1000, 2000


@torch.no_grad()
def predict(model, images, batch=500):
    """Predicted classes of uint8 NxHxWx3 ``images``."""
    model.eval()
    return torch.cat([model(normalize(images[k:k + batch])).argmax(1) for k in range(0, len(images), batch)])


def _rate(hits):
    return round(hits.float().mean().item(), 4)


def _fit(model, batches, optimizer, schedule, name, steps, clip=None, validate=None):
    """One pass of ``model`` over ``batches`` (uint8 images, labels), one optimizer and schedule step each."""
    model.train()
    for step, (images, labels) in enumerate(batches):
        loss = torch.nn.functional.cross_entropy(model(normalize(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        if (step + 1) % 100 == 0:
            print(f"  {name} step {step + 1}/{steps} loss {loss.item():.4f}", flush=True)
        if validate is not None and (step + 1) % 250 == 0:
            print(f"  {name} step {step + 1} val accuracy {validate(model):.4f}", flush=True)
            model.train()
    return model.eval()


def train(arch, images, labels, num_classes, seed, steps=STEPS, batch=BATCH, lr=LR):
    """Train a fresh ``arch`` model, one pass over the images in order, Adam with a one-cycle schedule."""
    torch.manual_seed(seed)
    model = ARCHITECTURES[arch](num_classes=num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    batches = ((images[k * batch:(k + 1) * batch], labels[k * batch:(k + 1) * batch]) for k in range(steps))
    return _fit(model, batches, optimizer, schedule, arch, steps)


class _Batches(torch.utils.data.Dataset):
    """``count`` batches of ``dataset`` from batch ``first`` on: batch k holds images ``(first + k) * batch`` up to
    ``(first + k + 1) * batch``, rendered on request."""

    def __init__(self, dataset, batch, first, count):
        self.dataset, self.batch, self.first, self.count = dataset, batch, first, count

    def __len__(self):
        return self.count

    def __getitem__(self, k):
        start = (self.first + k) * self.batch
        return render(self.dataset, range(start, start + self.batch))


def train_vit(world, seed, validation=None):
    """Train a fresh ViT through the cycles of :data:`VIT`, each on the next fresh training images. ``validation``
    (images, labels) is scored every 250 steps. One torch thread (the images are rendered ahead in one worker
    process): on a shared machine two threads' synchronisation made a step ~7x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = ARCHITECTURES["vit"](num_classes=len(world.classes))
        done = 0
        for cycle in VIT["cycles"]:
            model = vit_cycle(model, world, cycle, done, validation)
            done += cycle["steps"]
        return model
    finally:
        torch.set_num_threads(threads)


def vit_cycle(model, world, cycle, first, validation=None):
    """One cycle of ``cycle["steps"]`` steps on the training images from batch ``first`` on: a fresh AdamW (no decay
    on biases, norms, embeddings), linear warm-up to ``cycle["lr"]`` then cosine decay to zero."""
    decayed = [p for name, p in model.named_parameters() if p.dim() > 1 and "embed" not in name]
    others = [p for name, p in model.named_parameters() if not (p.dim() > 1 and "embed" not in name)]
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": VIT["weight_decay"]},
                                   {"params": others, "weight_decay": 0.0}], lr=cycle["lr"])
    steps, warmup = cycle["steps"], cycle["warmup"]
    schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(optimizer, 1 / warmup, 1.0, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps - warmup)], milestones=[warmup])
    validate = None if validation is None else lambda m: _rate(predict(m, validation[0]) == validation[1])
    batch = VIT["batch"]
    batches = torch.utils.data.DataLoader(
        _Batches(world.dataset("train", n=(first + steps) * batch), batch, first, steps), batch_size=None,
        num_workers=1, prefetch_factor=8)
    return _fit(model, batches, optimizer, schedule, "vit", steps, clip=VIT["clip"], validate=validate)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps of the CNNs")
    parser.add_argument("--only", nargs="+", metavar="MODEL",
                        help="train only these models (file stems such as shapes_vit, or architectures such as vit)")
    args = parser.parse_args(argv)
    shipped = [(variant, arch) for variant in SHIPPED_MODELS for arch in SHIPPED_MODELS[variant]]
    selected = [(v, a) for v, a in shipped if args.only is None or {a, weights_path(v, a).stem} & set(args.only)]
    if not selected:
        names = ", ".join(weights_path(v, a).stem for v, a in shipped)
        parser.error(f"--only {' '.join(args.only)} names no shipped model; models: {names}")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    ASSETS.mkdir(exist_ok=True)
    start = time.perf_counter()
    metrics = {"steps": args.steps, "batch": BATCH, "lr": LR, "split_seeds": SPLIT_SEEDS,
               "n_val": N_VAL, "n_test": N_TEST, "models": {}}
    if args.only is not None and (ASSETS / "metrics.json").exists():  # keep the other models' entries
        metrics = json.loads((ASSETS / "metrics.json").read_text())
    marked_world = load_world("shapes", "spurious")
    test_marked, _ = render(marked_world.dataset("test", n=N_TEST, corner_mark="all"))
    spurious_index = marked_world.classes.index(SPURIOUS_CLASS)
    for variant in SHIPPED_MODELS:
        if not any(v == variant for v, _ in selected):
            continue
        world = load_world("shapes", variant)
        cnns = any(v == variant and a != "vit" for v, a in selected)
        train_images, train_labels = render(world.dataset("train", n=args.steps * BATCH)) if cnns else (None, None)
        val_images, val_labels = render(world.dataset("val", n=N_VAL))
        test_images, test_labels = render(world.dataset("test", n=N_TEST))
        others = test_labels != spurious_index
        for seed, arch in enumerate(SHIPPED_MODELS[variant]):
            if (variant, arch) not in selected:
                continue
            t0 = time.perf_counter()
            if arch == "vit":
                model = train_vit(world, seed, validation=(val_images, val_labels))
            else:
                model = train(arch, train_images, train_labels, len(world.classes), seed, steps=args.steps)
            seconds = time.perf_counter() - t0
            save_file(model.state_dict(), weights_path(variant, arch))
            marked = predict(model, test_marked)
            result = {
                **({"training": VIT} if arch == "vit" else {}),
                "parameters": sum(p.numel() for p in model.parameters()),
                "train_seconds": round(seconds, 1),
                "val_accuracy": _rate(predict(model, val_images) == val_labels),
                "test_accuracy": _rate(predict(model, test_images) == test_labels),
                "test_accuracy_with_corner_mark": _rate(marked == test_labels),
                f"corner_mark_flips_to_{SPURIOUS_CLASS.replace(' ', '_')}": _rate(marked[others] == spurious_index),
            }
            metrics["models"][weights_path(variant, arch).stem] = result
            print(weights_path(variant, arch).name, json.dumps(result), flush=True)
    if args.only is None:
        metrics["total_seconds"] = round(time.perf_counter() - start, 1)
    (ASSETS / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"total {metrics['total_seconds']} s; wrote {ASSETS / 'metrics.json'}")


if __name__ == "__main__":
    main()
