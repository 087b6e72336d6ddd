"""Vision transformers: agreement with the AttnLRP authors' reference (lxt), conservation, and speed.

The model is torchvision's ``vit_b_16`` built as ``benchmarks/reference/lxt_vit.py`` builds it (random weights, seed 0,
the zero-initialised head re-drawn with seed 1, input seed 2), so the heatmaps of both sides explain the same model:

- agreement: conceptscope's ``CPLRP`` composite against each lxt heatmap given with ``--reference`` (made by
  ``lxt_vit.py`` in lxt's own venv: lxt patches torch and zennit process-wide), relative L2 error;
- conservation: with every bias, the class token and the position embedding zero (float64), heatmap sum / logit, for
  CP-LRP (must be 1) and the AttnLRP rule set (whose softmax rule absorbs part of the relevance by design);
- speed (float32, 2 threads, sides in turn for ``--rounds`` rounds after a warm-up, best and median): one heatmap
  (CP-LRP with Gamma rules, CP attention with LRP-epsilon layers, AttnLRP) against one gradient x input pass;
  K = 64 conditional heatmaps of the MLP output of the blocks ``--blocks`` (one explanation, batched) against separate
  explanations, one per concept (each a forward and two backward passes; ``--separate`` of the 64 are timed and
  scaled to 64). A concept's backward pass runs from its block down to the input, so the lower the block, the more
  of the work the batched explanation shares.

    python benchmarks/transformers.py --reference /work/refvenvs/lxt/out/*.safetensors [--blocks 3 6 10]

Writes ``benchmarks/results/transformers.json``.
"""
import argparse
import json

import torch
from _common import in_turn, report, speedup
from reference.vit_setup import build
from safetensors import safe_open

import conceptscope as cs
from conceptscope.models.composites import CPLRP


def mlp_output(block):
    """The MLP output of ``block`` (counted from 1) of torchvision's ViT: 768 features per token."""
    return f"encoder.layers.encoder_layer_{block - 1}.mlp.3"


def agreement(path):
    with safe_open(path, "pt") as file:
        meta = file.metadata()
        reference = file.get_tensor("heatmap")
    dtype = getattr(torch, meta["dtype"])
    model, x = build(meta["zero_constants"] == "True", dtype)
    composite = CPLRP(float(meta["conv_gamma"]), float(meta["linear_gamma"]))
    attribution = cs.Explainer(model, composite).attribute(x, target=int(meta["target"]))
    heatmap = attribution.heatmaps[0].to(reference.dtype)
    logit = float(attribution.logits[0, int(meta["target"])])
    return {"reference": path.rsplit("/", 1)[-1], "dtype": meta["dtype"], "gammas": f"{meta['conv_gamma']}/"
            f"{meta['linear_gamma']}", "rel L2 vs lxt": float((heatmap - reference).norm() / reference.norm()),
            "sum/logit": float(heatmap.sum()) / logit, "lxt sum/logit": float(meta["heatmap_sum"]) / logit}


def gradient_x_input(model, x, target):
    x = x.clone().requires_grad_()
    model(x)[0, target].backward()
    return (x * x.grad).sum(1)


def speed(rounds, separate, blocks):
    model, x = build()
    xp = cs.Explainer(model, CPLRP())
    epsilon, attnlrp = cs.Explainer(model, "epsilon"), cs.Explainer(model, "attn_lrp")
    target = int(xp.attribute(x).targets[0])
    times = in_turn({"CP-LRP heatmap": lambda: xp.heatmap(x, target),
                     "CP attention, LRP-epsilon layers": lambda: epsilon.heatmap(x, target),
                     "AttnLRP heatmap": lambda: attnlrp.heatmap(x, target),
                     "gradient x input": lambda: gradient_x_input(model, x, target)}, rounds)
    plain = times["gradient x input"]
    ratio = {**speedup(times["CP-LRP heatmap"], plain, "CP-LRP (Gamma) / gradient x input"),
             **speedup(times["CP attention, LRP-epsilon layers"], plain,
                       "CP attention, LRP-epsilon / gradient x input"),
             **speedup(times["AttnLRP heatmap"], plain, "AttnLRP / gradient x input")}
    channels = list(range(64))
    for block in blocks:
        layer = mlp_output(block)

        def batched():
            xp._cache.clear()
            xp.explain(x[0], target, [layer]).conditional_heatmaps(layer, channels)

        def one_at_a_time():
            for channel in channels[:separate]:
                xp._cache.clear()
                xp.explain(x[0], target, [layer]).conditional_heatmaps(layer, [channel])

        names = f"K=64 batched, block {block}", f"{separate} separate, block {block}"
        times.update(in_turn(dict(zip(names, (batched, one_at_a_time))), rounds))
        ratio.update({name.replace(f"{separate} separate", "64 separate"): value * 64 / separate for name, value in
                      speedup(times[names[1]], times[names[0]], f"{names[1]} / K=64 batched").items()})
    return [{"what": name, **timing.columns("")} for name, timing in times.items()], ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", nargs="*", default=[], help="lxt heatmaps made by reference/lxt_vit.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--separate", type=int, default=4, help="how many of the 64 separate explanations to time")
    parser.add_argument("--blocks", type=int, nargs="+", default=[10],
                        help="blocks (1-12) whose MLP output the K = 64 conditional heatmaps condition on")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = [agreement(path) for path in args.reference]
    model, x = build(zero_constants=True, dtype=torch.float64)
    attribution = cs.Explainer(model, CPLRP(0.0, 0.0)).attribute(x)
    conservation = float(attribution.heatmaps.sum()) / float(attribution.logits[0, attribution.targets[0]])
    rows.append({"reference": "none (constants zero, float64, gammas 0/0)", "sum/logit": conservation})
    attention = cs.Explainer(model, "attn_lrp").attribute(x, target=attribution.targets)
    share = float(attention.heatmaps.sum()) / float(attention.logits[0, attention.targets[0]])
    rows.append({"reference": "none (constants zero, float64): AttnLRP rule set, share reaching the input",
                 "sum/logit": share})
    meta = {}
    if not args.skip_speed:
        speed_rows, ratios = speed(args.rounds, args.separate, args.blocks)
        rows += speed_rows
        meta["ratios"] = ratios
        print(json.dumps(ratios, indent=2))
    report("transformers", rows, meta)


if __name__ == "__main__":
    main()
