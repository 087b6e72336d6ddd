"""Relevance rules for the operations of a traced graph that carry no zennit rule: additions, products, gates,
normalisations, attention, activations and the operations that only move data.

zennit assigns rules to modules; a traced model also holds functional operations (a residual ``a + b``, a gate
``x * sigmoid(s)``, ``F.layer_norm``, ``q @ k.T``, a reshape). Each gets a rule here, chosen by what the operation
computes; an operation with no rule makes the engine refuse the model (:class:`UnsupportedOperationError`), never
fall back to a plain gradient, which is how LRP silently goes wrong on modern architectures.

The rules (sources: zennit's ``Norm`` rule and ``Pass``; AttnLRP, Achtibat et al. 2024; CP-LRP, Ali et al. 2022):

- :class:`Movement` — reshape, permute, slicing, concatenation, chunk/split, padding, max selection: relevance
  follows the data (the transpose of the operation), exactly conserved.
- :class:`Identity` — element-wise activations (ReLU, GELU, SiLU, Hardswish, ...), dropout and stochastic depth in
  eval mode, BatchNorm left unmerged (zennit's ``Pass``), multiplication or division by a constant (layer scale) and
  by a gate: the relevance passes unchanged (AttnLRP's identity rule).
- :class:`Proportional` — linear operations that mix inputs (``a + b``, ``a - b``, sums, means, average pooling,
  interpolation, products with constants or gates): each input gets relevance in proportion to its contribution,
  ``R_i = x_i * J_i^T (R / y)`` (the z-rule, zennit's ``Norm``, with a negligible stabiliser), so a residual sum
  splits between its branches as zennit's ResNet canonizer does, for any architecture; constants (biases, position
  embeddings) absorb their share.
  For a product of two relevant tensors (``q @ k.T``) the same rule halves each share (AttnLRP's uniform rule).
- Normalisations (LayerNorm, GroupNorm, RMSNorm) use :class:`Proportional` on the operation with its statistics
  treated as constants (AttnLRP; lxt's recipe), so the centring splits relevance and the scale does not create any.
- Gates: in ``x * g`` or ``g @ v`` where ``g`` is a gate (the output of sigmoid, hard-sigmoid or softmax, e.g.
  squeeze-and-excitation or attention weights), the gate is treated as a constant and all relevance goes to the
  signal (CP-LRP for attention: relevance flows through the values only, queries and keys are constant).
"""
import operator

import torch
import torch.nn.functional as F

from .errors import UnsupportedOperationError

VALUES, ATTNLRP = "values", "attnlrp"  # attention: weights held constant (CP-LRP), or AttnLRP's rules
EPSILON = 1e-12  # only a guard against division by zero: gradient x input (lxt) has no stabiliser at all


def stabilize(value, epsilon=EPSILON):
    """``value + epsilon * sign(value)`` (sign 0 taken as +1), as zennit's stabilisers (bit for bit), in two passes."""
    epsilon = value.new_tensor(epsilon)
    return value + torch.where(value >= 0, epsilon, -epsilon)


# -- what each operation is ----------------------------------------------------------------------------------------
ACTIVATIONS = {
    F.relu, torch.relu, torch.relu_, F.relu_, F.relu6, F.gelu, F.silu, F.hardswish, F.hardtanh, F.leaky_relu, F.elu,
    F.selu, F.celu, F.softplus, F.mish, torch.tanh, F.tanh, torch.sigmoid, F.sigmoid, F.hardsigmoid, F.logsigmoid,
    F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
}
ACTIVATION_METHODS = {"relu", "relu_", "gelu", "sigmoid", "tanh", "softmax", "float", "double", "half", "to",
                      "type_as", "contiguous", "clone", "sigmoid_", "tanh_"}
GATES = {torch.sigmoid, F.sigmoid, F.hardsigmoid, torch.softmax, F.softmax, torch.nn.functional.softmax}
GATE_METHODS = {"sigmoid", "softmax", "sigmoid_"}
GATE_MODULES = (torch.nn.Sigmoid, torch.nn.Hardsigmoid, torch.nn.Softmax)
ACTIVATION_MODULES = (
    torch.nn.ReLU, torch.nn.ReLU6, torch.nn.GELU, torch.nn.SiLU, torch.nn.Hardswish, torch.nn.Hardtanh,
    torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.SELU, torch.nn.CELU, torch.nn.Softplus, torch.nn.Mish, torch.nn.Tanh,
    torch.nn.Sigmoid, torch.nn.Hardsigmoid, torch.nn.Softmax, torch.nn.PReLU,
    torch.nn.Identity, torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d,
    torch.nn.AlphaDropout, torch.nn.modules.batchnorm._BatchNorm,
)
MOVEMENT = {
    operator.getitem, torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.cat, torch.concat,
    torch.stack, torch.chunk, torch.split, torch.squeeze, torch.unsqueeze, torch.roll, torch.narrow, torch.select,
    torch.flip, torch.movedim, torch.unbind, torch.tensor_split, F.pad, F.pixel_shuffle, F.pixel_unshuffle,
    torch.channel_shuffle, F.channel_shuffle, torch.max, torch.amax, F.adaptive_max_pool2d, F.max_pool2d,
    F.adaptive_max_pool1d, F.max_pool1d, torch.swapaxes, torch.t,
}
MOVEMENT_METHODS = {"view", "reshape", "permute", "transpose", "flatten", "unflatten", "squeeze", "unsqueeze",
                    "expand", "expand_as", "repeat", "chunk", "split", "unbind", "roll", "narrow", "select", "flip",
                    "movedim", "__getitem__", "t", "swapaxes", "tensor_split", "max", "amax", "view_as",
                    "reshape_as", "repeat_interleave", "contiguous"}
MOVEMENT_MODULES = (torch.nn.Flatten, torch.nn.Unflatten, torch.nn.ZeroPad2d, torch.nn.ConstantPad2d,
                    torch.nn.ChannelShuffle, torch.nn.PixelShuffle, torch.nn.AdaptiveMaxPool2d,
                    torch.nn.AdaptiveMaxPool1d, torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)
ADDITIONS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub, torch.subtract}
ADDITION_METHODS = {"add", "add_", "sub", "sub_", "__add__", "__radd__", "__sub__"}
PRODUCTS = {operator.mul, operator.imul, torch.mul, torch.multiply, operator.truediv, operator.itruediv, torch.div,
            torch.true_divide, operator.matmul, torch.matmul, torch.bmm, torch.mm, torch.einsum, operator.neg,
            torch.neg}
PRODUCT_METHODS = {"mul", "mul_", "div", "div_", "matmul", "bmm", "__mul__", "__rmul__", "__truediv__", "neg"}
LINEAR_MIXING = {torch.sum, torch.mean, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
                 F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.interpolate, F.linear, F.conv1d, F.conv2d, F.conv3d,
                 torch.cumsum, F.upsample, F.upsample_bilinear, F.upsample_nearest}
LINEAR_MIXING_METHODS = {"sum", "mean", "cumsum"}
LINEAR_MIXING_MODULES = (torch.nn.AvgPool1d, torch.nn.AvgPool2d, torch.nn.AvgPool3d, torch.nn.AdaptiveAvgPool1d,
                         torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool3d, torch.nn.Upsample,
                         torch.nn.UpsamplingBilinear2d, torch.nn.UpsamplingNearest2d)
NORMALISATIONS = {F.layer_norm, F.group_norm, F.rms_norm}
NORMALISATION_MODULES = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.RMSNorm)
IN_PLACE = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
            operator.itruediv: operator.truediv, torch.relu_: torch.relu, F.relu_: F.relu}
IN_PLACE_METHODS = {"add_": "add", "sub_": "sub", "mul_": "mul", "div_": "div", "relu_": "relu",
                    "sigmoid_": "sigmoid", "tanh_": "tanh", "clamp_": "clamp", "hardtanh_": "hardtanh"}


def out_of_place(graph):
    """Rewrite in-place operations of a traced graph into their out-of-place forms (``x += y`` → ``x + y``,
    ``F.relu(x, inplace=True)`` → ``F.relu(x)``), so that the forward pass never overwrites a recorded value and the
    per-operation backward passes never modify a leaf."""
    for node in graph.nodes:
        if node.op == "call_function" and node.target in IN_PLACE:
            node.target = IN_PLACE[node.target]
        elif node.op == "call_method" and node.target in IN_PLACE_METHODS:
            node.target = IN_PLACE_METHODS[node.target]
        if node.op in ("call_function", "call_method") and node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
    graph.lint()


# -- the rules -------------------------------------------------------------------------------------------------------
class Movement:
    """Relevance follows the data: the transpose of a reshape, permutation, selection or copy (conservative)."""

    def vjp(self, engine, trace, node, sources, grad, count):
        return engine.autograd_vjp(trace, node, sources, grad, count)


class Identity:
    """The relevance passes unchanged to the one relevant input (summed over broadcast dimensions)."""

    def vjp(self, engine, trace, node, sources, grad, count):
        (source,) = sources
        return [(source, _fit(engine, trace, source, grad, count))]


class Proportional:
    """The z-rule on a linear (or, with ``degree`` 2, bilinear) operation: ``R_i = x_i * J_i^T(R / y) / degree``.

    ``surrogate`` replaces the operation in the backward pass where it must see some of its inputs as constants
    (a normalisation's statistics)."""

    def __init__(self, degree=1, surrogate=None):
        self.degree = degree
        self.surrogate = surrogate

    def vjp(self, engine, trace, node, sources, grad, count):
        output = trace.values[node]
        if isinstance(grad, dict):  # items of a tuple output
            scaled = {i: g / trace.memo((node, "stable", i), lambda i=i: stabilize(output[i])) for i, g in grad.items()}
        else:
            scaled = grad / trace.memo((node, "stable"), lambda: stabilize(output))
        found = engine.autograd_vjp(trace, node, sources, scaled, count, surrogate=self.surrogate)
        return [(source, _times_input(trace, source, g) / self.degree) for source, g in found]


class Softmax:
    """AttnLRP's softmax rule: ``R_in = x * (R - s * sum(R))`` over the softmax's axis (``s`` its output), the
    Taylor decomposition at zero with the bias term absorbed — by design part of the relevance stays there."""

    def vjp(self, engine, trace, node, sources, grad, count):
        (source,) = sources
        output, input = trace.values[node], trace.values[source]
        dim = _softmax_dim(node, engine.modules)
        return [(source, input * (grad - output * grad.sum(dim, keepdim=True)))]


def _softmax_dim(node, modules):
    if node.op == "call_module":
        return modules[node.target].dim
    return node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)


def _is_softmax(node, modules):
    return ((node.op == "call_function" and node.target in (torch.softmax, F.softmax))
            or (node.op == "call_method" and node.target == "softmax")
            or (node.op == "call_module" and isinstance(modules[node.target], torch.nn.Softmax)))


class Addition:
    """``a + b`` (or ``a - b``), residual connections included: each relevant term gets ``x_i / (y + eps)`` of the
    relevance, the rest (constants: biases, position embeddings) is absorbed; element-wise, no backward pass."""

    def vjp(self, engine, trace, node, sources, grad, count):
        output = trace.memo((node, "stable"), lambda: stabilize(trace.values[node]))
        result = []
        for position, source in _positions(node, sources):
            share = trace.values[source] / output
            if position == 1 and _is_subtraction(node):
                share = -share
            result.append((source, _fit(engine, trace, source, grad * share, count)))
        return result


def _fit(engine, trace, source, relevance, count):
    """``relevance`` summed over the dimensions along which ``source``'s value was broadcast."""
    shape = engine.relevance_shape(trace, source, count)
    return relevance if tuple(relevance.shape) == shape else relevance.sum_to_size(shape)


def _is_subtraction(node):
    return node.target in (operator.sub, operator.isub, torch.sub, torch.subtract, "sub", "sub_", "__sub__")


def _positions(node, sources):
    """``[(argument position, node)]`` for the relevant tensor arguments of ``node``."""
    return [(i, arg) for i, arg in enumerate(node.args) if arg in sources]


def _times_input(trace, source, grad):
    value = trace.values[source].detach()
    return grad * value


# -- normalisations with their statistics held constant (AttnLRP; lxt) ------------------------------------------------
def _layer_norm_constant_std(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(normalized_shape), 0))
    mean = input.mean(dims, keepdim=True)
    std = (input.var(dims, keepdim=True, unbiased=False) + eps).sqrt().detach()
    out = (input - mean) / std
    if weight is not None:
        out = out * weight
    return out + bias if bias is not None else out


def _group_norm_constant_std(input, num_groups, weight=None, bias=None, eps=1e-5):
    shape = input.shape
    grouped = input.reshape(shape[0], num_groups, -1)
    mean = grouped.mean(-1, keepdim=True)
    std = (grouped.var(-1, keepdim=True, unbiased=False) + eps).sqrt().detach()
    out = ((grouped - mean) / std).reshape(shape)
    view = (1, -1, *[1] * (input.dim() - 2))
    if weight is not None:
        out = out * weight.reshape(view)
    return out + bias.reshape(view) if bias is not None else out


def _rms_norm_constant_scale(input, normalized_shape, weight=None, eps=None):
    dims = tuple(range(-len(normalized_shape), 0))
    eps = torch.finfo(input.dtype).eps if eps is None else eps
    out = input / (input.pow(2).mean(dims, keepdim=True) + eps).sqrt().detach()
    return out * weight if weight is not None else out


CONSTANT_STATISTICS = {F.layer_norm: _layer_norm_constant_std, F.group_norm: _group_norm_constant_std,
                       F.rms_norm: _rms_norm_constant_scale}


def _module_surrogate(module):
    """The normalisation module's forward with its statistics held constant."""
    if isinstance(module, torch.nn.LayerNorm):
        return lambda x: _layer_norm_constant_std(x, module.normalized_shape, module.weight, module.bias, module.eps)
    if isinstance(module, torch.nn.GroupNorm):
        return lambda x: _group_norm_constant_std(x, module.num_groups, module.weight, module.bias, module.eps)
    return lambda x: _rms_norm_constant_scale(x, module.normalized_shape, module.weight, module.eps)


# -- classification ----------------------------------------------------------------------------------------------------
PASS_THROUGH_MODULES = (torch.nn.Identity, torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d,
                        torch.nn.Dropout3d, torch.nn.AlphaDropout)


def is_gate(node, modules, attention=VALUES):
    """Whether ``node`` is a gate: a sigmoid/hard-sigmoid/softmax output, possibly reshaped, moved or passed through
    dropout (eval mode) on its way; under AttnLRP attention weights (softmax) are not gates but carry relevance."""
    if attention == ATTNLRP and _is_softmax(node, modules):
        return False
    while True:
        if node.op == "call_function" and node.target in GATES:
            return True
        if node.op == "call_method" and node.target in GATE_METHODS:
            return True
        if node.op == "call_module" and isinstance(modules[node.target], GATE_MODULES):
            return True
        passes = ((node.op == "call_function" and (node.target in MOVEMENT or node.target is F.dropout))
                  or (node.op == "call_method" and node.target in MOVEMENT_METHODS)
                  or (node.op == "call_module" and isinstance(modules[node.target], PASS_THROUGH_MODULES)))
        if not passes or not node.all_input_nodes:
            return False
        node = node.all_input_nodes[0]


def rule_for(node, modules, relevant, attention=VALUES):
    """The relevance rule of one graph node, or raise :class:`UnsupportedOperationError`. ``attention`` is
    :data:`VALUES` (CP-LRP: attention weights constant) or :data:`ATTNLRP` (softmax and uniform product rules)."""
    sources = [n for n in node.all_input_nodes if n in relevant]
    op, target = node.op, node.target
    if attention == ATTNLRP and _is_softmax(node, modules):
        return Softmax()
    fused = (F.scaled_dot_product_attention, F.multi_head_attention_forward)
    if attention == ATTNLRP and (target in fused or _wrapped_rule(target) is not None):
        raise _unsupported(node, "fused attention under the AttnLRP rules, whose attention weights must carry "
                                 "relevance (use the \"cp_lrp\" composite, or write the attention out, e.g. "
                                 "timm.layers.set_fused_attn(False))")
    if op == "call_module":
        module = modules[target]
        if isinstance(module, NORMALISATION_MODULES):
            return Proportional(surrogate=_module_surrogate(module))
        if isinstance(module, ACTIVATION_MODULES):
            return Identity()
        if isinstance(module, MOVEMENT_MODULES):
            return Movement()
        if isinstance(module, LINEAR_MIXING_MODULES):
            return Proportional()
        raise _unsupported(node, f"module {type(module).__name__}")
    if op == "call_function":
        if target in ADDITIONS:
            return Addition()
        if target in NORMALISATIONS:
            return Proportional(surrogate=CONSTANT_STATISTICS[target])
        if target in ACTIVATIONS or target in GATES:
            return Identity()
        if target in MOVEMENT:
            return Movement()
        if target in LINEAR_MIXING:
            return Proportional()
        if target in PRODUCTS:
            return _product_rule(node, sources, modules, attention)
        if target is F.scaled_dot_product_attention:
            return Proportional(surrogate=_values_only_attention)
        if target is F.multi_head_attention_forward:  # one linear map of the values (open_clip's attention pooling)
            return Proportional(surrogate=_values_only_multi_head_attention)
        if getattr(target, "__name__", "") == "stochastic_depth":  # torchvision.ops, identity in eval mode
            return Identity()
        wrapped = _wrapped_rule(target)
        if wrapped is not None:
            return wrapped
        raise _unsupported(node, f"function {getattr(target, '__module__', '')}.{getattr(target, '__name__', target)}")
    if op == "call_method":
        if target in ADDITION_METHODS:
            return Addition()
        if target in ACTIVATION_METHODS or target in GATE_METHODS:
            return Identity()
        if target in MOVEMENT_METHODS:
            return Movement()
        if target in LINEAR_MIXING_METHODS:
            return Proportional()
        if target in PRODUCT_METHODS:
            return _product_rule(node, sources, modules, attention)
        raise _unsupported(node, f"tensor method .{target}()")
    raise _unsupported(node, f"graph operation {op} {target}")


def _product_rule(node, sources, modules, attention):
    """Products: by a constant or a gate the relevance passes to the signal; two relevant signals share it (uniform)."""
    signals = [s for s in sources if not is_gate(s, modules, attention)]
    if not signals:
        raise _unsupported(node, "a product of gates only")
    elementwise = node.target in (operator.mul, operator.imul, torch.mul, torch.multiply, operator.truediv,
                                  operator.itruediv, torch.div, torch.true_divide, operator.neg, torch.neg,
                                  "mul", "mul_", "div", "div_", "__mul__", "__rmul__", "__truediv__", "neg")
    if len(signals) == 1 and elementwise:
        return _Only(signals[0], Identity())
    if len(signals) == 1:
        return _Only(signals[0], Proportional())
    if elementwise and node.target in (operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div",
                                       "div_", "__truediv__"):
        raise _unsupported(node, "a division of two relevant tensors")
    return Proportional(degree=len(signals))


class _Only:
    """Apply ``rule`` with only ``signal`` receiving relevance (the other operands are gates, held constant)."""

    def __init__(self, signal, rule):
        self.signal = signal
        self.rule = rule

    def vjp(self, engine, trace, node, sources, grad, count):
        return self.rule.vjp(engine, trace, node, [self.signal], grad, count)


def _values_only_attention(query, key, value, *args, **kwargs):
    """Scaled dot-product attention with the attention weights held constant (CP-LRP): linear in the values."""
    return F.scaled_dot_product_attention(query.detach(), key.detach(), value, *args, **kwargs)


class _ConstantSoftmaxFunctional:
    """``torch.nn.functional`` as a function sees it, but with softmax outputs held constant (detached)."""

    def __getattr__(self, name):
        return getattr(F, name)

    @staticmethod
    def softmax(*args, **kwargs):
        return F.softmax(*args, **kwargs).detach()


def constant_softmax(function):
    """``function`` (a module-level function that calls ``F.softmax``) with its attention weights held constant
    (CP-LRP), without patching anything globally: the copy resolves ``F`` to :class:`_ConstantSoftmaxFunctional`."""
    import types
    namespace = {**function.__globals__, "F": _ConstantSoftmaxFunctional()}
    return types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                              function.__closure__)


def _wrapped_rule(target):
    """Rules for functions that libraries mark as leaves of fx tracing (``torch.fx.wrap``)."""
    module, name = getattr(target, "__module__", ""), getattr(target, "__name__", "")
    if module == "torchvision.models.swin_transformer" and name == "shifted_window_attention":
        return Proportional(surrogate=constant_softmax(target))
    if module == "torchvision.models.swin_transformer" and name == "_patch_merging_pad":
        return Movement()
    return None


def _values_only_multi_head_attention(query, key, value, *args, **kwargs):
    """``F.multi_head_attention_forward`` with queries and keys held constant (CP-LRP, as lxt does): affine in the
    values, so the z-rule treats projections, weighting and output projection as one linear map."""
    return F.multi_head_attention_forward(query.detach(), key.detach(), value, *args, **kwargs)


def _unsupported(node, what):
    stack = node.meta.get("nn_module_stack") or {}
    where = f" in module {list(stack)[-1]!r}" if stack else ""
    return UnsupportedOperationError(
        f"no LRP rule for {what} (graph node {node.name!r}{where}), so its relevance cannot be propagated correctly. "
        "Wrap or replace that part of the model with supported operations, give the module a zennit rule in a custom "
        "Composite, or report the operation to conceptscope."
    )
