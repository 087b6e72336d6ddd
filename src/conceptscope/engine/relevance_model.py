"""A private, canonized copy of the user's model whose backward pass computes LRP relevance.

The user's model is never touched: canonizers (BatchNorm merging, ResNet sums) and rule surrogates live on a deep
copy, so a notebook cell running the model while a widget explains it never sees a hook or a merged BatchNorm. The copy
is rebuilt when the user's parameters or buffers change (tracked by their version counters).
"""
import copy
from collections import OrderedDict

import torch

from .rules import linearize


def fingerprint(model):
    """A cheap identity of the model's current weights: which tensors, and how often each was changed in place."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def _private_copy(model):
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                      "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
                      "_state_dict_hooks", "_load_state_dict_pre_hooks"):
            if hasattr(module, hooks):
                setattr(module, hooks, OrderedDict())
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return clone.eval().requires_grad_(False)


class RelevanceModel:
    """The canonized copy of ``model`` with every rule of ``composite`` spliced in as an autograd surrogate."""

    def __init__(self, model, composite):
        self.fingerprint = fingerprint(model)
        self.module = _private_copy(model)
        for canonizer in composite.canonizers:
            canonizer.apply(self.module)  # never reverted: the copy is ours
        ctx = {}
        for name, module in self.module.named_modules():
            template = composite.module_map(ctx, name, module)
            if template is not None:
                module.register_forward_hook(linearize(template, module).splice)
        self.modules = dict(self.module.named_modules())

    def forward(self, images, record=()):
        """Run ``images`` (which must require grad) and return the logits and ``{layer: output}`` for ``record``."""
        outputs = {}
        handles = [
            self.modules[name].register_forward_hook(lambda m, a, out, name=name: outputs.__setitem__(name, out))
            for name in record
        ]
        try:
            logits = self.module(images)
        finally:
            for handle in handles:
                handle.remove()
        return logits, outputs
