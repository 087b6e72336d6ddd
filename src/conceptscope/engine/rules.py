"""Linearised LRP rules: zennit rules turned into autograd surrogates that need no recomputation.

zennit applies a rule in a backward hook that re-runs the layer's modified forward pass on every backward call, which
dominates when one explanation needs many conditional backward passes. Every zennit ``BasicHook`` rule is linear in the
upper relevance once the forward pass is fixed::

    R_in = sum_k  a_k * J_k^T (b_k * R_out)

with ``a_k`` read off the rule's reducer (the modified inputs), ``b_k`` off its gradient mapper (the stabilised
denominators) and ``J_k`` the Jacobian of the layer under the k-th parameter modifier. ``a_k`` and ``b_k`` are computed
once in the forward pass; a surrogate whose vector-Jacobian product is exactly that map is spliced into the graph
(its value cancels to zero). The backward pass is then plain autograd: no recomputation, and any number of relevance
vectors can be propagated at once with ``torch.autograd.grad(..., is_grads_batched=True)``.
"""
import copy

import torch
from zennit.core import BasicHook, ParamMod
from zennit.rules import Pass


class UnsupportedRuleError(TypeError):
    """Raised for a zennit rule that is not linear in the upper relevance (e.g. guided backprop)."""


class LinearizedRule:
    """A zennit ``BasicHook`` rule bound to one module, with its modified parameters computed once."""

    def __init__(self, hook, module):
        self.hook = hook
        self.modified = [self._modified_module(param_mod, module) for param_mod in hook.param_modifiers]

    @staticmethod
    def _modified_module(param_mod, module):
        """A shallow copy of ``module`` holding the k-th modified parameters (frozen)."""
        with ParamMod.ensure(param_mod)(module) as modified:
            clone = copy.copy(modified)
            clone._parameters = {
                name: torch.nn.Parameter(param.detach(), requires_grad=False)
                for name, param in modified.named_parameters(recurse=False)
            }
        return clone

    def _forward(self, k, input):
        """The module's forward pass under the k-th modifiers (``forward`` directly: no hooks run)."""
        return self.hook.output_modifiers[k](self.modified[k].forward(input))

    def coefficients(self, input, output):
        """Return the non-zero terms ``(k, a_k, b_k)`` of the rule for this forward pass."""
        hook = self.hook
        with torch.no_grad():
            inputs = [modifier(input) for modifier in hook.input_modifiers]
            outputs = [self._forward(k, x) for k, x in enumerate(inputs)]
            scales = hook.gradient_mapper(torch.ones_like(output), outputs)
            if isinstance(scales, torch.Tensor):
                scales = [scales]
            zeros = [torch.zeros_like(x) for x in inputs]
            terms = []
            for k, scale in enumerate(scales):
                one_hot = list(zeros)
                one_hot[k] = torch.ones_like(inputs[k])
                weight = hook.reducer(inputs, one_hot)
                if bool(weight.any()) and bool(scale.any()):
                    terms.append((k, weight, scale))
        return terms

    def splice(self, module, args, output):
        """Forward hook: return ``output`` with a gradient that is this rule's relevance map."""
        input = args[0]
        if not input.requires_grad:
            return output
        delta = None
        for k, weight, scale in self.coefficients(input.detach(), output):
            term = scale * self._forward(k, weight * input)
            delta = term if delta is None else delta + term
        if delta is None:
            return output.detach()
        return output.detach() + (delta - delta.detach())


class PassRule:
    """zennit's ``Pass`` rule: the upper relevance goes through the module unchanged (activations)."""

    @staticmethod
    def splice(module, args, output):
        """Forward hook: identity gradient from output to input."""
        input = args[0]
        if not input.requires_grad:
            return output
        return output.detach() + (input - input.detach())


def linearize(hook, module):
    """Return the linearised form of a zennit rule template for ``module``."""
    if isinstance(hook, BasicHook):
        return LinearizedRule(hook, module)
    if isinstance(hook, Pass):
        return PassRule()
    raise UnsupportedRuleError(
        f"zennit rule {type(hook).__name__} on {type(module).__name__} is not supported by conceptscope's engine: "
        "it handles rules linear in the upper relevance (Epsilon, ZPlus, AlphaBeta, Gamma, Flat, WSquare, ZBox, "
        "Norm, Pass). Use a composite built from those."
    )
