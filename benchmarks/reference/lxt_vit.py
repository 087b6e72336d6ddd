"""Reference CP-LRP heatmaps of torchvision's ViT-B/16, computed by the AttnLRP authors' package lxt 2.1.

Run with the python of a separate venv that has lxt (lxt 2.1 imports only with transformers < 5, and it patches
torch and zennit classes process-wide, so conceptscope must never be imported next to it), e.g.

    python3 -m venv /work/refvenvs/lxt
    /work/refvenvs/lxt/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/refvenvs/lxt/bin/pip install 'lxt==2.1.*' 'transformers<5' zennit torch==2.14.1 torchvision==0.29.1
    /work/refvenvs/lxt/bin/python benchmarks/reference/lxt_vit.py --out vit_lxt.safetensors
    /work/refvenvs/lxt/bin/python benchmarks/reference/lxt_vit.py --bench 5      # timing, writes nothing

lxt's own torchvision ViT recipe (its examples/vit_torch.py): ``monkey_patch(torchvision.models.vision_transformer)``
(GELU: identity rule; LayerNorm: standard deviation detached; nn.MultiheadAttention: query and key detached, i.e.
CP-LRP, relevance flows only through the value path), ``monkey_patch_zennit()`` (zennit's BasicHook made to work in
lxt's gradient x input framework), a zennit LayerMapComposite with ``Gamma(conv_gamma)`` on every nn.Conv2d and
``Gamma(linear_gamma)`` on every nn.Linear, backward from the target logit (initial gradient 1), heatmap =
``(x * x.grad).sum(1)``. Parameters are frozen (requires_grad False) as in that example.

The model is made deterministically: ``torch.manual_seed(0); vit_b_16(weights=None).eval()``, then the zero-initialised
head is re-drawn with ``torch.manual_seed(1); normal_(heads.head.weight, std=0.02)``; the input is
``torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))``; the target is the predicted class of
the model that is explained (after ``--zero-constants`` and the ``--dtype`` cast). ``--zero-constants`` zeroes every
bias (conv, linear, LayerNorm, attention in_proj/out_proj, head), the class token and the position embedding, so
that relevance is conserved: heatmap sum == target logit.

Saved tensors: ``heatmap`` (224, 224), ``logits`` (1000,), ``input`` (1, 3, 224, 224) (in the explained dtype);
metadata (all strings): target, conv_gamma, linear_gamma, zero_constants, dtype, heatmap_sum, target_logit,
sum_over_logit, param_sum and param_abs_sum (float64 sums over all parameters of the explained model, to check that
the other side built the same weights), and the versions of lxt, zennit, torch, torchvision, transformers.
"""
import argparse
import contextlib
import json
import statistics
import time
from importlib.metadata import version

import torch

torch.set_num_threads(2)

import zennit.core  # noqa: E402
import zennit.rules  # noqa: E402
from lxt.efficient import monkey_patch, monkey_patch_zennit  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torchvision.models import vision_transformer  # noqa: E402
from vit_setup import build  # noqa: E402
from zennit.composites import LayerMapComposite  # noqa: E402

# every class attribute that lxt's ViT recipe replaces; the originals are kept for the plain gradient x input timing
PATCHED = [
    (torch.nn.GELU, 'forward'),
    (torch.nn.LayerNorm, 'forward'),
    (torch.nn.MultiheadAttention, 'forward'),
    (zennit.core.BasicHook, 'forward'),
    (zennit.core.BasicHook, 'backward'),
]
ORIGINAL = {key: getattr(*key) for key in PATCHED}
monkey_patch(vision_transformer)
monkey_patch_zennit()
LXT = {key: getattr(*key) for key in PATCHED}
assert all(LXT[key] is not ORIGINAL[key] for key in PATCHED), 'lxt did not patch every expected class attribute'


@contextlib.contextmanager
def unpatched():
    """Temporarily restore torch's and zennit's own methods (for the plain gradient x input pass)."""
    for (cls, name), fn in ORIGINAL.items():
        setattr(cls, name, fn)
    try:
        yield
    finally:
        for (cls, name), fn in LXT.items():
            setattr(cls, name, fn)


def lxt_heatmap(model, x, conv_gamma, linear_gamma, target=None):
    """lxt's CP-LRP recipe; returns (heatmap (224, 224), logits (1000,), target)."""
    composite = LayerMapComposite([
        (torch.nn.Conv2d, zennit.rules.Gamma(conv_gamma)),
        (torch.nn.Linear, zennit.rules.Gamma(linear_gamma)),
    ])
    x = x.detach().clone().requires_grad_(True)
    composite.register(model)
    try:
        y = model(x)
        if target is None:
            target = int(y[0].argmax())
        y[0, target].backward()
    finally:
        composite.remove()
    return (x * x.grad).sum(1)[0].detach(), y[0].detach(), target


def gradient_x_input(model, x, target):
    """Plain gradient x input of the unpatched model (torch's own GELU, LayerNorm, attention; no zennit hooks)."""
    with unpatched():
        x = x.detach().clone().requires_grad_(True)
        y = model(x)
        y[0, target].backward()
    return (x * x.grad).sum(1)[0].detach()


def versions():
    return {name: version(name) for name in ('lxt', 'zennit', 'torch', 'torchvision', 'transformers')}


def explain(args):
    dtype = getattr(torch, args.dtype)
    model, x = build(args.zero_constants, dtype)
    heatmap, logits, target = lxt_heatmap(model, x, args.conv_gamma, args.linear_gamma)
    total, logit = float(heatmap.sum()), float(logits[target])
    params = [p.detach().double() for p in model.parameters()]
    meta = {
        'target': target,
        'conv_gamma': args.conv_gamma,
        'linear_gamma': args.linear_gamma,
        'zero_constants': args.zero_constants,
        'dtype': args.dtype,
        'heatmap_sum': total,
        'target_logit': logit,
        'sum_over_logit': total / logit,
        'param_sum': float(sum(p.sum() for p in params)),
        'param_abs_sum': float(sum(p.abs().sum() for p in params)),
        **versions(),
    }
    if args.out:
        save_file(
            {'heatmap': heatmap.contiguous(), 'logits': logits.contiguous(), 'input': x.contiguous()},
            args.out,
            metadata={key: str(value) for key, value in meta.items()},
        )
    print(f'target {target}  heatmap sum {total:.9g}  target logit {logit:.9g}  sum/logit {total / logit:.6f}')
    print(json.dumps(meta))


def bench(args):
    dtype = getattr(torch, args.dtype)
    model, x = build(args.zero_constants, dtype)
    _, _, target = lxt_heatmap(model, x, args.conv_gamma, args.linear_gamma)  # warm-up
    gradient_x_input(model, x, target)  # warm-up
    times = {'lxt_cp_lrp': [], 'gradient_x_input': []}
    for _ in range(args.bench):
        start = time.perf_counter()
        lxt_heatmap(model, x, args.conv_gamma, args.linear_gamma, target)
        times['lxt_cp_lrp'].append(time.perf_counter() - start)
        start = time.perf_counter()
        gradient_x_input(model, x, target)
        times['gradient_x_input'].append(time.perf_counter() - start)
    result = {'model': 'vit_b_16', 'size': 224, 'dtype': args.dtype, 'threads': torch.get_num_threads(),
              'conv_gamma': args.conv_gamma, 'linear_gamma': args.linear_gamma, 'rounds': args.bench}
    for key, runs in times.items():
        result[key] = {'best': min(runs), 'median': statistics.median(runs), 'runs': runs}
    result['ratio_best'] = result['lxt_cp_lrp']['best'] / result['gradient_x_input']['best']
    result['ratio_median'] = result['lxt_cp_lrp']['median'] / result['gradient_x_input']['median']
    result.update(versions())
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='safetensors file to write')
    parser.add_argument('--conv-gamma', type=float, default=0.25)
    parser.add_argument('--linear-gamma', type=float, default=0.05)
    parser.add_argument('--zero-constants', action='store_true',
                        help='zero every bias, the class token and the position embedding before explaining')
    parser.add_argument('--dtype', choices=('float32', 'float64'), default='float32')
    parser.add_argument('--bench', type=int, default=0, metavar='ROUNDS',
                        help='time lxt CP-LRP against plain gradient x input in ROUNDS alternating rounds '
                             '(after one warm-up of each) instead of writing a file')
    args = parser.parse_args()
    if args.bench:
        bench(args)
    else:
        explain(args)


if __name__ == '__main__':
    main()
