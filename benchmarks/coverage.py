"""Architecture coverage: every torchvision classifier, the common timm families and open_clip's visual towers, each
explained as a new user would (``cs.Explainer(model)``), with random weights made comparable by
:func:`conceptscope.models.without_constants` (no additive constants, BatchNorm calibrated on noise):

- "sum/logit": the default composite's heatmap sum over the target logit (its ZPlus rule loses the relevance of empty
  windows, notably in depthwise convolutions); "LRP-0 sum/logit": the same with the conserving composite
  ``"epsilon"`` (LRP-epsilon, 1e-9, on every layer), which must be 1: every other operation's rule conserves;
- "logits err": the explained (canonized) copy's logits against the model's (max relative error, float32);
- "CRP err": relevance conserved from a layer to the input (conserving composite), conditioned on all its concepts at
  once, against the relevance at the layer (three layers spread over the depth; the worst is shown);
- "zennit err": against zennit's own hooks with the same composite, where zennit has rules for every operation of the
  model (its ResNet canonizer for ResNets); elsewhere the engine's rules it needed, which zennit lacks;
- "time s": one heatmap, best of 3 after a warm-up; "error": the message where a model is refused.

    python benchmarks/coverage.py [--only NAME ...] [--skip-large]

Writes ``benchmarks/results/coverage.json`` (and ``coverage.partial.json`` after each model);
``python benchmarks/readme_table.py`` writes the README's table from it.
"""
import argparse
import json
import warnings

import torch
import torchvision
from _common import RESULTS, in_turn, report

import conceptscope as cs
from conceptscope.engine.operations import Identity, Movement
from conceptscope.models.canonizers import MergeBatchNormByDataFlow
from conceptscope.models.random import without_constants

TIMM = ["resnet18", "resnet50", "efficientnet_b0", "convnext_atto", "vit_tiny_patch16_224", "deit_tiny_patch16_224",
        "swin_tiny_patch4_window7_224", "regnety_002", "mobilenetv3_small_100"]
OPEN_CLIP = ["RN50", "ViT-B-32"]
FIXED_SIZE = ("vit", "swin", "maxvit", "deit")
ZENNIT_COMPARABLE = ("alexnet", "vgg", "resnet", "resnext", "wide_resnet", "squeezenet")


def torchvision_models(skip_large):
    for name in torchvision.models.list_models(module=torchvision.models):
        kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        if skip_large and any(big in name for big in ("_h_14", "_l_16", "_l_32", "128gf", "32gf", "16gf", "_b_32")):
            continue
        yield f"torchvision {name}", lambda name=name, kwargs=kwargs: getattr(torchvision.models, name)(
            weights=None, **kwargs)


def timm_models():
    import timm
    for name in TIMM:
        yield f"timm {name}", lambda name=name: timm.create_model(name, pretrained=False)


def open_clip_models():
    import open_clip
    for name in OPEN_CLIP:
        yield f"open_clip {name}", lambda name=name: open_clip.create_model(name, pretrained=None).visual


def input_size(label, model):
    size = getattr(model, "image_size", None) or getattr(model, "default_cfg", {}).get("input_size", (3, 0, 0))[1]
    if isinstance(size, (tuple, list)):
        size = size[0]
    if "inception_v3" in label:
        return 299
    if any(key in label.lower() for key in FIXED_SIZE) or "open_clip" in label:
        return int(size) or 224
    return 64


def cut_layers(explanation, count=3):
    """Up to ``count`` recorded layers that carry relevance, spread over the depth (the output layer excluded)."""
    layers = [name for name in explanation.layers if name in explanation.relevances][:-1]
    return layers[::max(1, len(layers) // count)][:count]


def zennit_error(label, model, x, target, heatmap, own_rules):
    """Relative L2 error against zennit's hooks, where zennit has a rule for every operation: the families it was
    made for, or models that need none of the engine's own operation rules (None elsewhere)."""
    family = any(label.split()[-1].startswith(key) for key in ZENNIT_COMPARABLE)
    if "open_clip" in label or not (family or not own_rules):
        return None
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer

    # zennit's own rules, with BatchNorm merged exactly (its SequentialMergeBatchNorm leaves x / sqrt(1 + eps), issue
    # #234, so it would explain another model) and its canonizers for ResNet blocks' sums
    canonizers = [MergeBatchNormByDataFlow(), ResNetBasicBlockCanonizer(), ResNetBottleneckCanonizer()]
    with Gradient(model=model, composite=EpsilonPlusFlat(canonizers=canonizers)) as attributor:
        output, relevance = attributor(x, lambda out: torch.eye(out.shape[1])[[target]] * out)
    reference = relevance[0].sum(0)
    return float((heatmap - reference).norm() / reference.norm())


RULE_NAMES = {"Addition": "proportional sums", "Proportional": "z-rule on linear operations",
              "_Only": "gates/attention", "Softmax": "softmax"}


def rules_used(xp):
    """The engine's own operation rules this model needed beyond data movement and pass-through, in words."""
    relevance_model = xp._current()
    return sorted({RULE_NAMES.get(type(rule).__name__, type(rule).__name__)
                   for rule in relevance_model._operation_rules.values() if not isinstance(rule, (Identity, Movement))})


def run_one(label, build):
    row = {"model": label}
    torch.manual_seed(0)  # the random weights each model is built with: the same draw on every run
    try:
        model = build()
        size = input_size(label, model)
        model = without_constants(model, size)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            reference_logits = model(x)
        xp = cs.Explainer(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attribution = xp.attribute(x)
        target = attribution.targets[0]
        heatmap = attribution.heatmaps[0]
        logit = float(attribution.logits[0, target])
        row["explained"] = "yes"
        row["sum/logit"] = round(float(heatmap.sum()) / logit, 5)
        conserving = cs.Explainer(model, "epsilon")
        row["LRP-0 sum/logit"] = round(float(conserving.heatmap(x, target).sum()) / logit, 6)
        row["logits err"] = float((attribution.logits - reference_logits).abs().max() / reference_logits.abs().max())
        errors = []
        explanation = conserving.explain(x[0], target)
        for layer in cut_layers(explanation):
            channels = explanation.activations[layer].shape[0]
            conditional = explanation.conditional_heatmap({layer: list(range(channels))})
            through = float(explanation.relevances[layer].sum())
            errors.append(abs(float(conditional.sum()) - through) / max(abs(through), 1e-12))
        row["CRP err"] = max(errors)
        row["time s"] = in_turn({"heatmap": lambda: xp.heatmap(x)}, 3)["heatmap"].best
        own_rules = rules_used(xp)
        error = zennit_error(label, model, x, target, heatmap, own_rules)
        row["zennit err"] = error if error is not None else "n/a: " + (", ".join(own_rules) or "open_clip")
        unchanged = all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
        row["model unchanged"] = "yes" if unchanged else "NO"
    except Exception as error:  # a refusal is a result: its message is what the user sees
        row["explained"] = "refused"
        row["error"] = f"{type(error).__name__}: {error}"[:300]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="substrings of model labels to run")
    parser.add_argument("--skip-large", action="store_true", help="skip the largest ViT/RegNet variants")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: replace those models' rows in the existing coverage.json, keep the others")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sources = [*torchvision_models(args.skip_large)]
    try:
        sources += [*timm_models()]
    except ImportError:
        print("timm not installed: skipping timm models")
    sources += [*open_clip_models()]
    if args.only:
        sources = [(label, build) for label, build in sources if any(key in label for key in args.only)]
    rows = []
    for label, build in sources:
        rows.append(run_one(label, build))
        print(rows[-1], flush=True)
        write_partial(rows)
    if args.merge and (RESULTS / "coverage.json").exists():
        fresh = {row["model"]: row for row in rows}
        kept = json.loads((RESULTS / "coverage.json").read_text())["rows"]
        rows = [fresh.pop(row["model"], row) for row in kept] + list(fresh.values())
    report("coverage", rows)


def write_partial(rows):
    """The rows so far, so that a long run interrupted still leaves its results."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coverage.partial.json").write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
