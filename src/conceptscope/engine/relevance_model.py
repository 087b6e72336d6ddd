"""A private, canonized copy of the user's model, traced into a graph through which relevance flows backwards.

The user's model is never touched: canonizers (BatchNorm merging, ResNet sums) act on a deep copy, so a notebook cell
running the model while a widget explains it never sees a hook or a merged BatchNorm. The copy is rebuilt when the
user's model changes (tracked by :func:`~conceptscope.models.private.model_fingerprint`).

The copy is traced with ``torch.fx``; modules that carry a zennit rule are graph leaves. A forward pass (:meth:`run`)
keeps every node's value; each rule's coefficients are computed on the first backward pass through its module. A
backward pass (:meth:`RelevanceModel.propagate`) walks the graph in reverse and maps N relevance vectors at once, the
N folded into the batch dimension: rule modules through their linearised rule (a transposed convolution per term),
max pooling through its recorded switches, every other operation through autograd of that one operation, re-run on
its recorded inputs broadcast to N. A rule's input-side multiply is merged into the next rule's output-side multiply
where only activations lie between them, which halves the elementwise passes over the N relevance vectors in plain
CNNs.

Operations without a zennit rule (residual sums, gates, normalisations, attention, reshapes) get the rules of
:mod:`.operations`; one with no rule there makes the explanation raise instead of silently using its gradient.
"""
import copy
import operator

import torch
import torch.fx
import torch.nn.functional as F

from ..models.canonizers import ExplicitAttention
from ..models.layers import width
from ..models.private import model_fingerprint, private_copy
from .axes import activation_maps, check_output, concept_axis
from .checks import check_canonized, check_logits, relative_difference
from .errors import UntraceableModelError
from .operations import VALUES, Identity, out_of_place, rule_for
from .rules import in_place, linearize

STRUCTURAL_CANONIZERS = (ExplicitAttention(),)  # applied to every private copy, whatever the composite


def select_output(model, output_node, output):
    """The graph node of the tensor to explain: the forward's output itself, or the item ``output`` picks from a
    tuple, list or dict output (an index, a key, or a callable applied to the output's structure)."""
    selected = output_node
    if output is not None:
        try:
            selected = pick(output_node, output)
        except (KeyError, IndexError, TypeError) as error:
            raise ValueError(f"output={output!r} does not select a tensor from {type(model).__name__}'s output "
                             f"{_structure(output_node)}: {error}") from error
    if not isinstance(selected, torch.fx.Node):
        raise UntraceableModelError(
            f"{type(model).__name__}.forward returns {_structure(output_node)}, not one tensor: pass output= to the "
            "Explainer to pick the logits (a key such as 'out', an index such as 0, or a function of the output)")
    return selected


def pick(structure, output):
    """The item ``output`` (a key, an index, or a function of the whole) selects from a model's ``structure`` of
    outputs: graph nodes while tracing, tensors when run."""
    return output(structure) if callable(output) else structure[output]


def _structure(value):
    if isinstance(value, dict):
        return "a dict with keys " + ", ".join(map(repr, value))
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return "one tensor" if isinstance(value, (torch.fx.Node, torch.fx.Proxy)) else repr(value)


def _untraceable_hint(model):
    """What to do about a model fx cannot trace; torchvision's detectors get the reason by name."""
    if type(model).__module__.startswith("torchvision.models.detection"):
        return ("torchvision's detectors (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS, SSD) resize a list of images, "
                "decode boxes and run non-maximum suppression inside forward(): data-dependent control flow with no "
                "relevance rule. Explain a single-stage detector whose forward returns its dense outputs before "
                "decoding and NMS (scores and box offsets per location, like the shapes world's detector) with "
                "cs.Output(index) for one detection's score or coordinate")
    return "Models without data-dependent control flow in forward() trace; see torch.fx's limitations."


class _Tracer(torch.fx.Tracer):
    """fx tracer that keeps rule modules whole and remembers which node holds each module's output."""

    def __init__(self, leaves):
        super().__init__()
        self.leaves = leaves
        self.module_nodes = {}
        self.structured = {}  # modules traced through whose output is a tuple, list or dict: what it is

    def is_leaf_module(self, module, name):
        return id(module) in self.leaves or super().is_leaf_module(module, name)

    def call_module(self, module, forward, args, kwargs):
        output = super().call_module(module, forward, args, kwargs)
        name = self.path_of_module(module)
        if name and isinstance(output, torch.fx.Proxy):
            self.module_nodes[name] = output.node  # the last call wins, as for a forward hook
        elif name:
            self.structured[name] = _structure(output)
        return output


class Trace:
    """The values of one forward pass: every node's output and the max-pooling switches, plus what the backward passes
    derive from them, computed on the first backward pass through a node (so a backward pass that stops early never
    pays for the layers below) and kept for the next ones: each rule's coefficients (``terms``), each operation's
    autograd graph on its recorded inputs (``graphs``, for one image) and other per-node values (:meth:`memo`)."""

    def __init__(self, values, switches):
        self.values = values
        self.switches = switches
        self.terms = {}
        self.graphs = {}
        self._memo = {}

    def memo(self, key, compute):
        """``compute()``, computed once per trace for ``key``."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


class RelevanceModel:
    """The canonized copy of ``model`` with the rules of ``composite``, as a traced graph."""

    def __init__(self, model, composite, output=None, fingerprint=None, concept_axes=None):
        self.concept_axes = dict(concept_axes or {})  # the user's {layer: axis} where the rule of .axes is wrong
        self._widths = {}
        self.refused = {}  # default concept layers whose output showed no concept axis: {name: why}
        self.fingerprint = model_fingerprint(model) if fingerprint is None else fingerprint  # the model it copies
        self.digest = None  # SHA-256 of those weights, taken when first asked for (Explainer.weights_digest)
        self.module = private_copy(model)
        self._uncanonized = copy.deepcopy(self.module)  # checked against on the first forward pass, then dropped
        self.attention = getattr(composite, "attention", VALUES)  # how attention weights are treated
        self._canonizers = (*STRUCTURAL_CANONIZERS, *composite.canonizers)
        for canonizer in self._canonizers:
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
                f"{_untraceable_hint(model)}"
            ) from error
        out_of_place(self.graph)
        self.nodes = list(self.graph.nodes)
        self.layer_nodes = tracer.module_nodes
        self.structured_outputs = tracer.structured
        placeholders = [node for node in self.nodes if node.op == "placeholder"]
        self.input_node = placeholders[0]
        self._defaults = {node: node.args[0] for node in placeholders[1:]}  # extra forward() arguments: defaults
        missing = [node.target for node in placeholders[1:] if not node.args]
        if missing:
            raise UntraceableModelError(f"{type(model).__name__}.forward takes arguments {missing} besides the input, "
                                        "without defaults; wrap the model so that forward takes the image alone")
        self.output = output
        self.node_of_output = select_output(model, next(n for n in self.nodes if n.op == "output").args[0], output)
        self._relevant = _closure(self.input_node, lambda n: n.users) | {self.input_node}
        self._operation_rules = {}

    @staticmethod
    def ancestors(node):
        """Every node ``node`` depends on."""
        return _closure(node, lambda n: n.all_input_nodes)

    def node(self, layer):
        """The graph node whose value is the output of module ``layer``."""
        return self.layer_nodes[layer]

    def concept_axis(self, layer, tensor):
        """The axis of ``layer``'s output ``tensor`` (or a relevance of that shape) that holds its concepts: see
        :func:`.axes.concept_axis`."""
        return concept_axis(self.modules.get(layer), tensor.dim(), self.concept_axes.get(layer))

    def concept_view(self, layer, tensor):
        """``tensor`` of ``layer`` (None stays None) with the concept axis at dim 1, as every caller sees concepts."""
        if tensor is None:
            return None
        axis = self.concept_axis(layer, tensor)
        return tensor if axis in (1, 1 - tensor.dim()) else tensor.movedim(axis, 1)

    def activation_maps(self, layer, view, image_size):
        """``layer``'s concept view ``view`` of a batch laid on the grid of an image of ``image_size``: see
        :func:`.axes.activation_maps` (tokens on their patch grid, an attention's heads reduced to tokens first)."""
        return activation_maps(self.modules.get(layer), view, image_size)

    def native_view(self, layer, tensor):
        """The inverse of :meth:`concept_view`: ``tensor`` in the layer's own layout, as the graph computes it."""
        axis = self.concept_axis(layer, tensor)
        return tensor if axis in (1, 1 - tensor.dim()) else tensor.movedim(1, axis)

    def concepts(self, layer):
        """How many concepts ``layer`` has: the width of its module where its weights tell (convolution, linear layer,
        normalisation), else of the last such layer its output is computed from (a transformer block: its MLP's
        output layer, the width of the residual stream); None if there is none. Checked against the output on every
        forward pass (:meth:`check_output`)."""
        if layer not in self._widths:
            found = width(self.modules[layer])
            if found is None:
                node = self.layer_nodes[layer]
                below = self.ancestors(node) | {node}
                writers = [(name, n) for name, n in self.layer_nodes.items()
                           if n in below and width(self.modules[name]) is not None]
                order = {n: i for i, n in enumerate(self.nodes)}
                found = width(self.modules[max(writers, key=lambda w: order[w[1]])[0]]) if writers else None
            self._widths[layer] = found
        return self._widths[layer]

    def check_output(self, layer, value, batch):
        """Refuse ``layer`` as a concept layer when its recorded ``value`` has no concept axis (see
        :func:`.axes.check_output`)."""
        axis = None if not isinstance(value, torch.Tensor) else self.concept_axis(layer, value)
        check_output(layer, value, batch, axis, self.concepts(layer))

    def concept_layers(self, names):
        """``{name: concepts}`` of the layers ``names`` that are called in the traced forward pass, in call order."""
        called = [name for name in self.layer_nodes if name in names]
        order = {node: i for i, node in enumerate(self.nodes)}
        return {name: self.concepts(name) for name in sorted(called, key=lambda n: order[self.layer_nodes[n]])}

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
                    values[node] = images if node is self.input_node else self._defaults[node]
                    continue
                if node.op == "output":
                    logits = values[self.node_of_output]
                    continue
                args, kwargs = _load(node.args, values), _load(node.kwargs, values)
                if node.op == "call_module" and _is_plain_max_pool(self.modules[node.target]):
                    values[node], switches[node] = _max_pool_with_switches(self.modules[node.target], args[0])
                    continue
                values[node] = _call(self, node, args, kwargs)
            check_logits(logits, self.module)
            if self._uncanonized is not None:
                check_canonized(logits, self._reference_logits(self._uncanonized, images), self.module,
                                lambda: self._float64_difference(images))
                self._uncanonized = None
        return logits, Trace(values, switches)

    def _reference_logits(self, module, images):
        """The logits of ``module`` (the user's model or a copy) as the explained output selects them."""
        output = module(images)
        return output if self.output is None else pick(output, self.output)

    def _float64_difference(self, images):
        """The canonizers' effect on the logits when the uncanonized copy is canonized in float64 (on copies)."""
        plain = copy.deepcopy(self._uncanonized).double()
        canonized = copy.deepcopy(plain)
        for canonizer in self._canonizers:
            canonizer.apply(canonized)
        images = images.double()
        return relative_difference(self._reference_logits(canonized, images), self._reference_logits(plain, images))

    def propagate(self, trace, start, grad, collect=(), conditions=None, to_input=True, owned=False):
        """Propagate relevance ``grad`` (N, ...) from node ``start`` down to the input (``to_input``), or only as far
        as the nodes in ``collect``.

        Returns ``{node: relevance}`` for the nodes in ``collect`` (and the input node). ``conditions`` maps nodes
        below ``start`` to masks: arriving there, relevance is masked, and relevance that bypasses such a node (e.g.
        through a shortcut) is dropped, as in zennit-crp's condition sets. ``owned``: the caller hands ``grad`` over,
        so it may be overwritten.

        Relevances the pass made itself and handed to no one else are multiplied and summed in place: each new tensor
        of N relevance vectors costs the CPU page faults that take longer than the multiply itself.
        """
        conditions = conditions or {}
        collect = set(collect) | ({self.input_node} if to_input else set())
        count = grad.shape[0]
        pending, result = {start: (grad, None, owned)}, {}  # node -> (relevance, factor not yet applied, owned)
        for node in reversed(self.nodes[: self.nodes.index(start) + 1]):
            if len(result) == len(collect):
                break
            grad, factor, owned = pending.pop(node, (None, None, False))
            if grad is None:
                continue
            if node in conditions:
                grad, owned = grad * conditions[node], True
                pending.clear()
            if node in collect:
                result[node] = _apply(grad, factor)
                owned = owned and factor is not None  # without a factor the result is grad itself
            if node.op == "placeholder":
                continue
            for input_node, input_grad, input_factor, input_owned in self._vjp(trace, node, grad, factor, owned,
                                                                                count):
                if input_node in pending:
                    earlier, earlier_factor, earlier_owned = pending[input_node]
                    input_grad = _add(_apply(earlier, earlier_factor, earlier_owned),
                                      _apply(input_grad, input_factor, input_owned),
                                      earlier_owned or earlier_factor is not None)
                    input_factor, input_owned = None, True
                pending[input_node] = (input_grad, input_factor, input_owned)
        return result

    def _vjp(self, trace, node, grad, factor, owned, count):
        """``[(input node, relevance, factor, owned)]`` for the inputs of ``node`` on the path from the model input,
        for the relevance ``factor * grad`` at its output (``owned``: ``grad`` may be overwritten). Rule modules and
        pass-through operations hand a factor on (see :meth:`LinearizedRule.vjp`); other operations apply it first."""
        values = trace.values
        if node.op == "call_module" and node.target in self.rules and node in self._relevant:
            (source,) = node.all_input_nodes
            rule = self.rules[node.target]
            if node not in trace.terms:
                trace.terms[node] = rule.coefficients(values[source], values[node])
            shape = self.relevance_shape(trace, source, count)
            return [(source, *rule.vjp(trace.terms[node], grad, shape, factor, owned))]
        if node.op == "call_function" and node.target is torch.stack:
            return self._unstack(node, grad, factor)
        sources = [n for n in node.all_input_nodes if n in self._relevant and _holds_tensors(values[n])]
        if not sources:
            return []
        if node.op == "call_function" and node.target is operator.getitem and not isinstance(values[sources[0]],
                                                                                             torch.Tensor):
            return [(sources[0], {node.args[1]: _apply(grad, factor)}, None, False)]  # one item of a tuple output
        rule = self._operation_rules.get(node)
        if rule is None:
            rule = self._operation_rules[node] = rule_for(node, self.modules, self._relevant, self.attention)
        if (type(rule) is Identity and len(sources) == 1 and isinstance(grad, torch.Tensor)
                and tuple(grad.shape) == self.relevance_shape(trace, sources[0], count)):
            return [(sources[0], grad, factor, owned)]
        grad = _apply(grad, factor, owned)
        if node in trace.switches:
            (source,) = node.all_input_nodes
            return [(source, _max_unpool(grad, trace.switches[node], values[source].shape), None, True)]
        found = rule.vjp(self, trace, node, sources, grad, count)
        return [(source, g, None, _fresh(g, grad, found)) for source, g in found]

    def autograd_vjp(self, trace, node, sources, grad, count, surrogate=None):
        """``[(source, J^T grad)]`` for the operation of ``node`` (or ``surrogate``, which takes the same arguments),
        re-run with autograd on its recorded inputs. ``grad`` is a tensor, or ``{index: tensor}`` for a tuple output.

        N relevance vectors of a one-image trace are mapped with ``is_grads_batched`` (vmap over the vectors), so the
        operation runs on its recorded inputs as they were: reshapes keep their sizes, and operations that move or
        merge the batch dimension (windows of a Swin block) stay right."""
        values = trace.values
        batched = count != values[self.input_node].shape[0]
        # the trace of one explained image serves many backward passes (CRP): there the operation is re-run with
        # autograd once and its graph kept; a batch's trace (an atlas build) serves one, and keeps no graph
        keep = values[self.input_node].shape[0] == 1
        key = (node, surrogate, tuple(sources))
        if key in trace.graphs:
            leaves, output = trace.graphs[key]
        else:
            with torch.enable_grad():
                leaves = {n: values[n].detach().requires_grad_() for n in sources}
                load = lambda args: torch.fx.node.map_arg(args, lambda n: leaves.get(n, values[n]))  # noqa: E731
                args, kwargs = load(node.args), load(node.kwargs)
                output = surrogate(*args, **kwargs) if surrogate is not None else _call(self, node, args, kwargs)
            if keep:
                trace.graphs[key] = leaves, output
        if isinstance(grad, dict):
            outputs, grads = [output[i] for i in grad], list(grad.values())
        else:
            outputs, grads = [output], [grad]
        if batched:
            grads = [g.unsqueeze(1) if o.shape[0] == 1 and g.dim() == o.dim() else g for o, g in zip(outputs, grads)]
        found = torch.autograd.grad(outputs, list(leaves.values()), grads, allow_unused=True, retain_graph=keep,
                                    is_grads_batched=batched)
        if batched:
            found = [g if g is None or leaves[n].shape[0] != 1 else g.squeeze(1) for n, g in zip(leaves, found)]
        return [(n, g) for n, g in zip(leaves, found) if g is not None]

    def relevance_shape(self, trace, node, count):
        """The shape of N = ``count`` relevance vectors of ``node``'s value: the value's own shape for a batch traced
        with one relevance vector per image, else N in place of a one-image batch (or before it, where the value's
        first dimension is not the batch)."""
        value = trace.values[node]
        if count == trace.values[self.input_node].shape[0]:
            return tuple(value.shape)
        return (count, *value.shape[1:]) if value.shape[0] == 1 else (count, *value.shape)

    def _unstack(self, node, grad, factor):
        """The transpose of ``torch.stack`` (how the ResNet canonizer feeds its sums): each input's slice, as views,
        its factor sliced alike."""
        tensors, dim = (list(node.args) + [node.kwargs.get("dim", 0)])[:2]
        return [(n, grad.select(dim, i), None if factor is None else factor.select(dim, i), False)
                for i, n in enumerate(tensors) if isinstance(n, torch.fx.Node) and n in self._relevant]


def _apply(grad, factor, owned=False):
    """``factor * grad``, or ``grad`` when there is no factor; in place where ``grad`` is ``owned`` (see
    :func:`.rules.in_place`)."""
    if factor is None:
        return grad
    return grad.mul_(factor) if owned and in_place(grad, factor) else factor * grad


def _fresh(relevance, grad, found):
    """Whether an operation rule's ``relevance`` (one of the ``found`` for upper relevance ``grad``) is a tensor it
    made for this input alone: not ``grad`` passed through, not a view, not handed to another input too."""
    return (isinstance(relevance, torch.Tensor) and relevance is not grad and relevance._base is None
            and sum(g is relevance for _, g in found) == 1)


def _add(first, second, owned=False):
    """The sum of two relevances: tensors (into ``first`` where it is ``owned``), or ``{index: tensor}`` for the items
    of a tuple output."""
    if isinstance(first, dict):
        return {key: first[key] + second[key] if key in first and key in second else first.get(key, second.get(key))
                for key in {**first, **second}}
    return first.add_(second) if owned and in_place(first, second) else first + second


def _holds_tensors(value):
    """A tensor, or a tuple/list output with tensors among its items (e.g. ``(output, None)`` of an attention)."""
    return isinstance(value, torch.Tensor) or (isinstance(value, (tuple, list))
                                               and any(isinstance(v, torch.Tensor) for v in value))


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


def _is_plain_max_pool(module):
    return type(module) is torch.nn.MaxPool2d and not module.return_indices


def _max_pool_with_switches(module, input):
    """The max pooling's output and the input position each output came from."""
    return F.max_pool2d(input, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode,
                        return_indices=True)


def _max_unpool(grad, switches, input_shape):
    """Route relevance of a max pooling's outputs to the input positions that won (summing overlaps), in the layout
    of ``grad`` (channels first, or channels last as the rules' convolutions leave it on the CPU)."""
    count, channels = grad.shape[:2]
    positions = input_shape[2] * input_shape[3]
    if grad.is_contiguous() or not grad.is_contiguous(memory_format=torch.channels_last):
        flat = grad.new_zeros(count, channels, positions)
        flat.scatter_add_(2, switches.flatten(2).expand(count, -1, -1), grad.flatten(2))
        return flat.view(count, channels, *input_shape[2:])
    flat = grad.new_zeros(count, positions, channels)
    flat.scatter_add_(1, switches.flatten(2).transpose(1, 2).expand(count, -1, -1),
                      grad.permute(0, 2, 3, 1).reshape(count, -1, channels))
    return flat.view(count, *input_shape[2:], channels).permute(0, 3, 1, 2)
