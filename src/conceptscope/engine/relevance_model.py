"""A private, canonized copy of the user's model, traced into a graph through which relevance flows backwards.

The user's model is never touched: canonizers (BatchNorm merging, ResNet sums) act on a deep copy, so a notebook cell
running the model while a widget explains it never sees a hook or a merged BatchNorm. The copy is rebuilt when the
user's parameters or buffers change (tracked by their version counters).

The copy is traced with ``torch.fx``; modules that carry a zennit rule are graph leaves. A forward pass (:meth:`run`)
keeps every node's value; each rule's coefficients are computed on the first backward pass through its module. A
backward pass (:meth:`RelevanceModel.propagate`) walks the graph in reverse and maps N relevance vectors at once, the
N folded into the batch dimension: rule modules through their linearised rule (a transposed convolution per term),
max pooling through its recorded switches, every other operation through autograd of that one operation, re-run on
its recorded inputs broadcast to N. A rule's input-side multiply is merged into the next rule's output-side multiply
where only activations lie between them, which halves the elementwise passes over the N relevance vectors in plain
CNNs.
"""
import copy
from collections import OrderedDict

import torch
import torch.fx
import torch.nn.functional as F

from .rules import linearize


def fingerprint(model):
    """A cheap identity of the model's current weights: which tensors, and how often each was changed in place."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def _private_copy(model):
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                      "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called"):
            if hasattr(module, hooks):
                setattr(module, hooks, OrderedDict())
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return clone.eval().requires_grad_(False)


class UntraceableModelError(TypeError):
    """The model cannot be traced by torch.fx (e.g. data-dependent control flow in ``forward``)."""


class _Tracer(torch.fx.Tracer):
    """fx tracer that keeps rule modules whole and remembers which node holds each module's output."""

    def __init__(self, leaves):
        super().__init__()
        self.leaves = leaves
        self.module_nodes = {}

    def is_leaf_module(self, module, name):
        return id(module) in self.leaves or super().is_leaf_module(module, name)

    def call_module(self, module, forward, args, kwargs):
        output = super().call_module(module, forward, args, kwargs)
        name = self.path_of_module(module)
        if name and isinstance(output, torch.fx.Proxy):
            self.module_nodes[name] = output.node  # the last call wins, as for a forward hook
        return output


class Trace:
    """The values of one forward pass: every node's output and the max-pooling switches, plus each rule's
    coefficients, computed on the first backward pass through its module (so a backward pass that stops early never
    pays for the layers below)."""

    def __init__(self, values, switches):
        self.values = values
        self.switches = switches
        self.terms = {}


class RelevanceModel:
    """The canonized copy of ``model`` with the rules of ``composite``, as a traced graph."""

    def __init__(self, model, composite):
        self.fingerprint = fingerprint(model)
        self.module = _private_copy(model)
        for canonizer in composite.canonizers:
            canonizer.apply(self.module)  # never reverted: the copy is ours
        self.modules = dict(self.module.named_modules())
        ctx, self.rules = {}, {}
        for name, module in self.modules.items():
            template = composite.module_map(ctx, name, module)
            if template is not None:
                self.rules[name] = linearize(template, module)
        tracer = _Tracer({id(self.modules[name]) for name in self.rules})
        try:
            self.graph = tracer.trace(self.module)
        except Exception as error:  # fx raises many types; all mean "cannot trace"
            raise UntraceableModelError(
                f"conceptscope traces models with torch.fx, which failed for {type(model).__name__}: {error}. "
                "Models without data-dependent control flow in forward() trace; see torch.fx's limitations."
            ) from error
        self.nodes = list(self.graph.nodes)
        self.layer_nodes = tracer.module_nodes
        self.input_node = next(node for node in self.nodes if node.op == "placeholder")
        self.node_of_output = next(node for node in self.nodes if node.op == "output").args[0]
        if not isinstance(self.node_of_output, torch.fx.Node):
            raise UntraceableModelError(f"{type(model).__name__}.forward must return one tensor (the logits)")
        self._relevant = _closure(self.input_node, lambda n: n.users) | {self.input_node}

    @staticmethod
    def ancestors(node):
        """Every node ``node`` depends on."""
        return _closure(node, lambda n: n.all_input_nodes)

    def node(self, layer):
        """The graph node whose value is the output of module ``layer``."""
        return self.layer_nodes[layer]

    def lower_layers(self, layer, layers):
        """Which of ``layers`` are directly below ``layer``: reached from it without passing another of them."""
        owners = {self.layer_nodes[name]: name for name in layers}
        found, seen, stack = set(), set(), list(self.layer_nodes[layer].all_input_nodes)
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in owners:
                found.add(owners[node])
            else:
                stack.extend(node.all_input_nodes)
        return [name for name in layers if name in found]

    def run(self, images):
        """Forward pass: the logits and a :class:`Trace` of every value the backward passes need."""
        values, switches = {}, {}
        with torch.no_grad():
            for node in self.nodes:
                if node.op == "placeholder":
                    values[node] = images
                    continue
                if node.op == "output":
                    logits = _load(node.args[0], values)
                    continue
                args, kwargs = _load(node.args, values), _load(node.kwargs, values)
                if node.op == "call_module" and _is_plain_max_pool(self.modules[node.target]):
                    values[node], switches[node] = _max_pool_with_switches(self.modules[node.target], args[0])
                    continue
                values[node] = _call(self, node, args, kwargs)
        return logits, Trace(values, switches)

    def propagate(self, trace, start, grad, collect=(), conditions=None, to_input=True):
        """Propagate relevance ``grad`` (N, ...) from node ``start`` down to the input (``to_input``), or only as far
        as the nodes in ``collect``.

        Returns ``{node: relevance}`` for the nodes in ``collect`` (and the input node). ``conditions`` maps nodes
        below ``start`` to masks: arriving there, relevance is masked, and relevance that bypasses such a node (e.g.
        through a shortcut) is dropped, as in zennit-crp's condition sets.
        """
        conditions = conditions or {}
        collect = set(collect) | ({self.input_node} if to_input else set())
        pending, result = {start: (grad, None)}, {}  # node -> (relevance, factor not yet applied to it)
        for node in reversed(self.nodes[: self.nodes.index(start) + 1]):
            if len(result) == len(collect):
                break
            grad, factor = pending.pop(node, (None, None))
            if grad is None:
                continue
            if node in conditions:
                grad = grad * conditions[node]
                pending.clear()
            if node in collect:
                result[node] = _apply(grad, factor)
            if node.op == "placeholder":
                continue
            for input_node, input_grad, input_factor in self._vjp(trace, node, grad, factor):
                if input_node in pending:
                    input_grad, input_factor = _apply(*pending[input_node]) + _apply(input_grad, input_factor), None
                pending[input_node] = (input_grad, input_factor)
        return result

    def _vjp(self, trace, node, grad, factor):
        """``[(input node, relevance, factor)]`` for the inputs of ``node`` on the path from the model input, for the
        relevance ``factor * grad`` at its output. Rule modules and pass-through activations hand a factor on (see
        :meth:`LinearizedRule.vjp`); other operations apply it first."""
        values, count = trace.values, grad.shape[0]
        if node.op == "call_module" and node.target in self.rules and node in self._relevant:
            (source,) = node.all_input_nodes
            rule = self.rules[node.target]
            if node not in trace.terms:
                trace.terms[node] = rule.coefficients(values[source], values[node])
            shape = (count, *values[source].shape[1:])
            return [(source, *rule.vjp(trace.terms[node], grad, shape, factor))]
        if node.op == "call_function" and node.target is torch.stack:
            return self._unstack(node, grad, factor)
        grad = _apply(grad, factor)
        if node in trace.switches:
            (source,) = node.all_input_nodes
            return [(source, _max_unpool(grad, trace.switches[node], values[source].shape), None)]
        sources = [n for n in node.all_input_nodes if n in self._relevant and isinstance(values[n], torch.Tensor)]
        if not sources:
            return []
        with torch.enable_grad():
            leaves = {n: _broadcast(values[n], count).requires_grad_() for n in sources}
            local = {**values, **leaves}
            output = _call(self, node, _load(node.args, local), _load(node.kwargs, local))
            grads = torch.autograd.grad(output, list(leaves.values()), grad, allow_unused=True)
        return [(n, g, None) for n, g in zip(sources, grads) if g is not None]

    def _unstack(self, node, grad, factor):
        """The transpose of ``torch.stack`` (how the ResNet canonizer feeds its sums): each input's slice, as views,
        its factor sliced alike."""
        tensors, dim = (list(node.args) + [node.kwargs.get("dim", 0)])[:2]
        return [(n, grad.select(dim, i), None if factor is None else factor.select(dim, i))
                for i, n in enumerate(tensors) if isinstance(n, torch.fx.Node) and n in self._relevant]


def _apply(grad, factor):
    """``factor * grad``, or ``grad`` when there is no factor."""
    return grad if factor is None else factor * grad


def _closure(start, neighbours):
    """The nodes reached from ``start`` by repeatedly following ``neighbours`` (``start`` itself not included)."""
    found, stack = set(), [start]
    while stack:
        for node in neighbours(stack.pop()):
            if node not in found:
                found.add(node)
                stack.append(node)
    return found


def _load(args, values):
    return torch.fx.node.map_arg(args, lambda node: values[node])


def _call(relevance_model, node, args, kwargs):
    if node.op == "call_module":
        return relevance_model.modules[node.target](*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "get_attr":
        value = relevance_model.module
        for part in node.target.split("."):
            value = getattr(value, part)
        return value
    raise ValueError(f"unexpected graph node {node.op}")


def _broadcast(value, count):
    """``value`` detached, its batch broadcast to ``count`` where it has one sample (a view, no copy)."""
    value = value.detach()
    return value.expand(count, *value.shape[1:]) if value.shape[0] == 1 and count != 1 else value


def _is_plain_max_pool(module):
    return type(module) is torch.nn.MaxPool2d and not module.return_indices


def _max_pool_with_switches(module, input):
    """The max pooling's output and the input position each output came from."""
    return F.max_pool2d(input, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode,
                        return_indices=True)


def _max_unpool(grad, switches, input_shape):
    """Route relevance of a max pooling's outputs to the input positions that won (summing overlaps)."""
    count, channels = grad.shape[:2]
    flat = grad.new_zeros(count, channels, input_shape[2] * input_shape[3])
    index = switches.flatten(2).expand(count, -1, -1)
    flat.scatter_add_(2, index, grad.flatten(2))
    return flat.view(count, channels, *input_shape[2:])
