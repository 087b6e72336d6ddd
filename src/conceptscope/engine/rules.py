"""Linearised LRP rules: zennit rules as explicit linear maps of the upper relevance, computed without recomputation.

zennit applies a rule in a backward hook that re-runs the layer's modified forward pass on every backward call, which
dominates when one explanation needs many conditional backward passes. Every zennit ``BasicHook`` rule is linear in the
upper relevance once the forward pass is fixed::

    R_in = sum_k  a_k * J_k^T (b_k * R_out)

with ``a_k`` read off the rule's reducer (the modified inputs), ``b_k`` off its gradient mapper (the stabilised
denominators) and ``J_k`` the Jacobian of the layer under the k-th parameter modifier. ``a_k`` and ``b_k`` are computed
once in the forward pass (:meth:`LinearizedRule.coefficients`); each backward pass is then one transposed convolution
(or matrix product) per non-zero term, for any number of relevance vectors at once (:meth:`LinearizedRule.vjp`).
zennit's Gamma rule, four terms as written, is rewritten exactly in two (:class:`GammaRule`).
"""
import copy
import functools

import torch
import torch.nn.functional as F
from zennit.core import BasicHook, ParamMod, Stabilizer
from zennit.layer import Sum
from zennit.rules import Gamma, Pass

from .operations import stabilize

_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
_AFFINE = (*_CONVS, torch.nn.Linear)
_CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}  # by the number of spatial dimensions
_TRANSPOSED_CONVOLUTIONS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def channels_last(tensor):
    """``tensor`` laid out channels-last if it is an image batch on the CPU (else as it is): oneDNN's convolutions
    run fastest on that layout there, and the rule coefficients share it so that multiplies keep it."""
    if tensor.dim() == 4 and tensor.device.type == "cpu":
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def in_place(tensor, other):
    """Whether ``tensor op= other`` gives what ``tensor op other`` would: same shape and dtype after broadcasting, and
    ``tensor`` no view (an expanded or selected relevance shares its memory with another). Callers check that nobody
    else holds ``tensor``."""
    return (tensor._base is None and tensor.dim() >= other.dim() and tensor.dtype == other.dtype
            and all(size in (1, own) for own, size in zip(tensor.shape[::-1], other.shape[::-1])))


class UnsupportedRuleError(TypeError):
    """Raised for a zennit rule that is not linear in the upper relevance (e.g. guided backprop)."""


class LinearizedRule:
    """A zennit ``BasicHook`` rule bound to one module, with its modified parameters computed once."""

    def __init__(self, hook, module):
        self.hook = hook
        self.modified = [self._modified_module(param_mod, module) for param_mod in hook.param_modifiers]
        self.selects = self._reducer_selects(hook)
        self.unmodified = [self._is_unmodified(k, module) for k in range(len(self.modified))]
        self._kernels = {}

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

    def _is_unmodified(self, k, module):
        """Whether the k-th term computes the module's own output (Epsilon's): its parameters, input and output
        unmodified, probed once, so that the forward pass's output is reused instead of computed again."""
        same = all(torch.equal(getattr(self.modified[k], name), param) for name, param in module.named_parameters(
            recurse=False)) and all(getattr(self.modified[k], name) is None for name, param in
                                    module._parameters.items() if param is None)
        probe = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
        return (same and torch.equal(self.hook.input_modifiers[k](probe), probe)
                and torch.equal(self.hook.output_modifiers[k](probe), probe))

    @staticmethod
    def _reducer_selects(hook):
        """Whether the reducer is zennit's usual ``sum_k inputs[k] * gradients[k]``, so that ``a_k`` is the k-th
        modified input itself (no one-hot products to compute); probed once on small random tensors."""
        generator = torch.Generator().manual_seed(0)
        count = len(hook.input_modifiers)
        inputs = [torch.randn(2, 3, generator=generator) for _ in range(count)]
        return all(torch.equal(hook.reducer(inputs, [torch.full((2, 3), float(j == k)) for j in range(count)]),
                               inputs[k]) for k in range(count))

    def _kernel(self, k):
        """How the k-th term's transposed convolution runs (worked out once): ``(shared, kernel, flipped)``.

        ``shared``: every output channel has the same kernel (zennit's Flat rule), so the transpose sums the upper
        relevance over channels first and convolves one channel. ``flipped``: stride 1 and one group, so the transpose
        is a plain convolution with the kernel flipped and its channel axes swapped, which oneDNN runs faster on the
        CPU than the transposed convolution."""
        if k not in self._kernels:
            module = self.modified[k]
            weight = module.weight
            shared = weight.shape[0] > 1 and bool((weight == weight[:1]).all())
            if shared:
                weight = weight[:1]
            flipped = all(s == 1 for s in module.stride) and all(
                p <= d * (size - 1) for p, d, size in zip(module.padding, module.dilation, weight.shape[2:]))
            if flipped:
                weight = weight.flip(list(range(2, weight.dim()))).transpose(0, 1)
            self._kernels[k] = shared, channels_last(weight.contiguous()), flipped
        return self._kernels[k]

    def _forward(self, k, input):
        """The module's forward pass under the k-th modifiers (``forward`` directly: no hooks run)."""
        return self.hook.output_modifiers[k](self.modified[k].forward(input))

    def _bias(self, k, like):
        """The k-th modified output for an all-zero input of an affine module: its bias, broadcast (no copy)."""
        bias = self.modified[k].bias
        if bias is None:
            return self.hook.output_modifiers[k](like.new_zeros(()).expand_as(like))
        shape = (-1,) if type(self.modified[k]) is torch.nn.Linear else (-1, *[1] * (like.dim() - 2))
        return self.hook.output_modifiers[k](bias.reshape(shape).expand_as(like))

    def coefficients(self, input, output):
        """The non-zero terms ``[(k, a_k, b_k)]`` of the rule for this forward pass.

        A modified input that is all zero (e.g. the negative part of a ReLU output) skips its convolution or matrix
        product, whose output is then the bias alone, and its term."""
        hook = self.hook
        with torch.no_grad():
            inputs = [modifier(input) for modifier in hook.input_modifiers]
            nonzero = [bool(x.any()) for x in inputs]
            outputs = [output if self.unmodified[k] else self._forward(k, x)
                       if nonzero[k] or type(self.modified[k]) not in _AFFINE
                       else self._bias(k, output) for k, x in enumerate(inputs)]
            scales = hook.gradient_mapper(output.new_ones(()).expand_as(output), outputs)
            if isinstance(scales, torch.Tensor):
                scales = [scales]
            scales = [channels_last(scale) for scale in scales]
            if self.selects:
                return [(k, channels_last(inputs[k]), scale) for k, scale in enumerate(scales) if nonzero[k]]
            zeros = [torch.zeros_like(x) for x in inputs]
            terms = []
            for k, scale in enumerate(scales):
                one_hot = list(zeros)
                one_hot[k] = torch.ones_like(inputs[k])
                weight = hook.reducer(inputs, one_hot)
                if bool(weight.any()):
                    terms.append((k, channels_last(weight), scale))
        return terms

    def vjp(self, terms, grad, input_shape, factor=None, owned=False):
        """Relevance at the module's input for upper relevance ``factor * grad`` (``grad`` (N, ...), ``factor`` None
        or broadcastable to it), given this pass's ``terms``; ``owned``: ``grad`` may be overwritten.

        A rule of one term returns ``(J^T(b * factor * grad), a, owned)`` with ``a`` not yet applied, so that the
        caller can merge it into the next rule's multiply (each elementwise pass over N relevance vectors costs as
        much memory traffic as a small convolution); otherwise ``(relevance, None, owned)``. ``owned`` says whether the
        relevance is a new tensor nobody else holds.
        """
        if len(terms) == 1:
            k, weight, scale = terms[0]
            scale = scale if factor is None else scale * factor
            scaled = grad.mul_(scale) if owned and in_place(grad, scale) else scale * grad
            result = self._transpose(k, scaled, input_shape)
            return result, weight, result is scaled or result._base is None
        if factor is not None:
            grad = grad.mul_(factor) if owned and in_place(grad, factor) else factor * grad
        result = None
        for k, weight, scale in terms:
            term = self._transpose(k, scale * grad, input_shape)
            term = term.mul_(weight) if in_place(term, weight) else weight * term
            result = term if result is None else result.add_(term) if in_place(result, term) else result + term
        return torch.zeros(input_shape, dtype=grad.dtype, device=grad.device) if result is None else result, None, True

    def _transpose(self, k, grad, input_shape):
        """``J_k^T grad``: a transposed convolution or matrix product, or autograd for other linear modules."""
        module = self.modified[k]
        if type(module) in _CONVS and not isinstance(module.padding, str) and module.padding_mode == "zeros":
            grad = channels_last(grad)
            if module.groups == 1:
                shared, kernel, flipped = self._kernel(k)
                if shared:
                    grad = grad.sum(1, keepdim=True)
                dims = grad.dim() - 2
                if flipped:
                    padding = [d * (size - 1) - p for d, size, p in zip(module.dilation, kernel.shape[2:],
                                                                        module.padding)]
                    return _CONVOLUTIONS[dims](grad, kernel, None, 1, padding, module.dilation)
                output_padding = [size - ((n - 1) * s - 2 * p + d * (width - 1) + 1) for size, n, s, p, d, width in zip(
                    input_shape[2:], grad.shape[2:], module.stride, module.padding, module.dilation, kernel.shape[2:])]
                return _TRANSPOSED_CONVOLUTIONS[dims](grad, kernel, None, module.stride, module.padding,
                                                      output_padding, 1, module.dilation)
            # an empty input of the right shape: torch.nn.grad.convNd_input passes an expanded scalar instead, which
            # the convolution copies into a full tensor on every call
            return torch.ops.aten.convolution_backward(
                grad, channels_last(grad.new_empty(input_shape)), module.weight, None, module.stride, module.padding,
                module.dilation, False, [0] * (module.weight.dim() - 2), module.groups, (True, False, False))[0]
        if type(module) is torch.nn.Linear:
            return grad @ module.weight
        if type(module) is Sum:  # zennit's residual sum (ResNet canonizer): the transpose only repeats, a view
            return grad.unsqueeze(module.dim).expand(input_shape)
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
    def vjp(terms, grad, input_shape, factor=None, owned=False):
        return grad, factor, owned


class GammaRule(LinearizedRule):
    """zennit's generalised ``Gamma`` rule on a convolution or linear layer, in two terms instead of its four.

    zennit sums four products: ``x+`` and ``x-`` through ``W1 = W + gamma W+`` and ``W2 = W + gamma W-``, scaled by
    ``b+`` (outputs z > 0) or ``b-`` (z < 0). Since ``W1 + W2 = (2 + gamma) W`` and ``W1 - W2 = gamma |W|``, the
    same relevance is ``x * W^T(c1 g) + |x| * |W|^T(c2 g)`` with ``c1 = (1 + gamma/2) / d`` and
    ``c2 = gamma/2 sign(z) / d``, where ``d`` is the stabilised denominator of the output's sign, ``(1 + gamma/2) W x
    + gamma/2 sign(z) |W| |x|`` plus that sign's bias: one extra pass ``|W| |x|`` (``W x`` is the output less its
    bias). Half the transposed convolutions per backward pass, a quarter of the modified forward passes; equal to
    zennit's up to rounding, with the rule's own stabiliser."""

    def __init__(self, hook, module, gamma, stabilizer, biases):
        self.hook, self.gamma = hook, gamma
        if type(stabilizer) is Stabilizer and not stabilizer.clip and not stabilizer.norm_scale:
            stabilizer = functools.partial(stabilize, epsilon=stabilizer.epsilon)  # the same, in fewer passes
        self.stabilizer = stabilizer
        weight = module.weight.detach()
        self.modified = [_with_weight(module, weight), _with_weight(module, weight.abs())]
        self.bias = None if module.bias is None else module.bias.detach()
        self.biases = biases
        self._kernels = {}

    @classmethod
    def of(cls, hook, module):
        """The two-term form of ``hook`` on ``module``, or None where it does not apply: another rule, another
        module type, parameter modifiers other than Gamma's (checked on the module's own parameters) or a gradient
        mapper whose stabiliser cannot be read off."""
        if type(hook) is not Gamma or type(module) not in _AFFINE or (
                type(module) in _CONVS and (isinstance(module.padding, str) or module.padding_mode != "zeros")):
            return None
        cells = [cell.cell_contents for cell in hook.gradient_mapper.__closure__ or ()]
        if len(cells) != 1 or not callable(cells[0]):
            return None
        weight = module.weight.detach()
        modified = [LinearizedRule._modified_module(param_mod, module) for param_mod in hook.param_modifiers[:4]]
        gamma = float((modified[0].weight - modified[1].weight).sum() / weight.abs().sum().clamp(min=1e-30))
        expected = (weight + gamma * weight.clamp(min=0), weight + gamma * weight.clamp(max=0))
        if not all(torch.allclose(modified[k].weight, expected[k % 3 != 0], rtol=1e-6, atol=1e-12)
                   for k in range(4)):
            return None
        if any(modified[k].bias is not None and bool(modified[k].bias.any()) for k in (1, 3)):
            return None
        return cls(hook, module, gamma, cells[0], tuple(None if modified[k].bias is None else modified[k].bias.detach()
                                                        for k in (0, 2)))

    def coefficients(self, input, output):
        """``[(0, x, c1), (1, |x|, c2)]`` for this forward pass; none for an all-zero input."""
        module, half = self.modified[0], self.gamma / 2
        with torch.no_grad():
            if not bool(input.any()):
                return []
            magnitude = input.abs()
            absolute = self.modified[1].forward(magnitude)
            product = output if self.bias is None else output - _broadcast(module, self.bias, output)
            sign = output.sign()
            denominator = (1 + half) * product + half * sign * absolute
            positive, negative = self.biases
            if positive is not None or negative is not None:
                zero = output.new_zeros(())
                denominator = denominator + torch.where(
                    output > 0, zero if positive is None else _broadcast(module, positive, output),
                    zero if negative is None else _broadcast(module, negative, output))
            inverse = (output != 0) / self.stabilizer(denominator)
            return [(0, channels_last(input), channels_last((1 + half) * inverse)),
                    (1, channels_last(magnitude), channels_last(half * sign * inverse))]


def _with_weight(module, weight):
    """A shallow copy of the affine ``module`` with ``weight`` (frozen) and no bias."""
    clone = copy.copy(module)
    clone._parameters = {"weight": torch.nn.Parameter(weight, requires_grad=False), "bias": None}
    return clone


def _broadcast(module, bias, like):
    """``bias`` of the affine ``module`` shaped to broadcast against its output ``like``; None stays None."""
    if bias is None:
        return None
    shape = (-1,) if type(module) is torch.nn.Linear else (-1, *[1] * (like.dim() - 2))
    return bias.reshape(shape)


def linearize(hook, module):
    """Return the linearised form of a zennit rule template for ``module``."""
    if isinstance(hook, BasicHook):
        return GammaRule.of(hook, module) or LinearizedRule(hook, module)
    if isinstance(hook, Pass):
        return PassRule()
    raise UnsupportedRuleError(
        f"zennit rule {type(hook).__name__} on {type(module).__name__} is not supported by conceptscope's engine: "
        "it handles rules linear in the upper relevance (Epsilon, ZPlus, AlphaBeta, Gamma, Flat, WSquare, ZBox, "
        "Norm, Pass). Use a composite built from those."
    )
