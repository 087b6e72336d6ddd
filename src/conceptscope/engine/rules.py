"""Linearised LRP rules: zennit rules as explicit linear maps of the upper relevance, computed without recomputation.

zennit applies a rule in a backward hook that re-runs the layer's modified forward pass on every backward call, which
dominates when one explanation needs many conditional backward passes. Every zennit ``BasicHook`` rule is linear in the
upper relevance once the forward pass is fixed::

    R_in = sum_k  a_k * J_k^T (b_k * R_out)

with ``a_k`` read off the rule's reducer (the modified inputs), ``b_k`` off its gradient mapper (the stabilised
denominators) and ``J_k`` the Jacobian of the layer under the k-th parameter modifier. ``a_k`` and ``b_k`` are computed
once in the forward pass (:meth:`LinearizedRule.coefficients`); each backward pass is then one transposed convolution
(or matrix product) per non-zero term, for any number of relevance vectors at once (:meth:`LinearizedRule.vjp`).
"""
import copy

import torch
from zennit.core import BasicHook, ParamMod
from zennit.rules import Pass

_CONV_INPUT_GRADS = {
    torch.nn.Conv1d: torch.nn.grad.conv1d_input,
    torch.nn.Conv2d: torch.nn.grad.conv2d_input,
    torch.nn.Conv3d: torch.nn.grad.conv3d_input,
}


_AFFINE = (*_CONV_INPUT_GRADS, torch.nn.Linear)


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
                name: None if param is None else torch.nn.Parameter(param.detach(), requires_grad=False)
                for name, param in modified._parameters.items()
            }
        return clone

    def _forward(self, k, input):
        """The module's forward pass under the k-th modifiers (``forward`` directly: no hooks run)."""
        return self.hook.output_modifiers[k](self.modified[k].forward(input))

    def _forward_or_bias(self, k, input, like):
        """``_forward(k, input)``, skipping the convolution or matrix product when ``input`` is all zero (e.g. the
        negative part of a ReLU output): then the output is the (modified) bias alone."""
        module = self.modified[k]
        if type(module) not in _AFFINE or bool(input.any()):
            return self._forward(k, input)
        output = torch.zeros_like(like)
        if module.bias is not None:
            output = output + module.bias.reshape((-1,) if type(module) is torch.nn.Linear else (-1, *[1] * (like.dim() - 2)))
        return self.hook.output_modifiers[k](output)

    def coefficients(self, input, output):
        """The non-zero terms ``[(k, a_k, b_k)]`` of the rule for this forward pass."""
        hook = self.hook
        with torch.no_grad():
            inputs = [modifier(input) for modifier in hook.input_modifiers]
            outputs = [self._forward_or_bias(k, x, output) for k, x in enumerate(inputs)]
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

    def vjp(self, terms, grad, input_shape):
        """Relevance at the module's input for upper relevance ``grad`` (N, ...), given this pass's ``terms``."""
        result = None
        for k, weight, scale in terms:
            term = weight * self._transpose(k, scale * grad, input_shape)
            result = term if result is None else result + term
        return torch.zeros(input_shape, dtype=grad.dtype, device=grad.device) if result is None else result

    def _transpose(self, k, grad, input_shape):
        """``J_k^T grad``: a transposed convolution or matrix product, or autograd for other linear modules."""
        module = self.modified[k]
        conv_input_grad = _CONV_INPUT_GRADS.get(type(module))
        if conv_input_grad is not None and not isinstance(module.padding, str) and module.padding_mode == "zeros":
            return conv_input_grad(input_shape, module.weight, grad, module.stride, module.padding, module.dilation,
                                   module.groups)
        if type(module) is torch.nn.Linear:
            return grad @ module.weight
        with torch.enable_grad():
            probe = torch.zeros(input_shape, dtype=grad.dtype, device=grad.device, requires_grad=True)
            (result,) = torch.autograd.grad(self._forward(k, probe), probe, grad)
        return result


class PassRule:
    """zennit's ``Pass`` rule: the upper relevance goes through the module unchanged (activations)."""

    @staticmethod
    def coefficients(input, output):
        return ()

    @staticmethod
    def vjp(terms, grad, input_shape):
        return grad


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
