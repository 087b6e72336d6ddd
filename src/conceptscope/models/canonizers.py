"""Canonizers that make a model explainable without changing what it computes."""
import torch
import torch.fx
from zennit.canonizers import MergeBatchNorm

from .layers import AttentionHeads


class MergeBatchNormByDataFlow(MergeBatchNorm):
    """Merge each BatchNorm into the convolution or linear layer whose output it normalises, the pairs found by
    tracing the data flow.

    zennit's ``SequentialMergeBatchNorm`` pairs modules by declaration order, which pairs the wrong layers where a
    BatchNorm precedes its convolution (DenseNet); and it leaves the merged BatchNorm computing ``x / sqrt(1 + eps)``
    (zennit issue #234), so the explained logits differ from the model's. Here a merged BatchNorm is an exact identity
    (its ``eps`` set to 0 while merged). BatchNorms without a preceding layer of their own stay as they are.
    """

    def apply(self, root_module):
        instances = []
        for linear, batch_norm in _pairs(root_module):
            instance = self.copy()
            instance.register((linear,), batch_norm)
            instances.append(instance)
        return instances

    def register(self, linears, batch_norm):
        self.eps = batch_norm.eps
        super().register(linears, batch_norm)
        batch_norm.eps = 0.0

    def remove(self):
        super().remove()
        self.batch_norm.eps = self.eps


def _pairs(root_module):
    """``[(layer, batch_norm)]`` where the BatchNorm's input is the output of a convolution or linear layer that
    feeds nothing else, each module called once."""
    try:
        graph = torch.fx.Tracer().trace(root_module)
    except Exception:  # untraceable models are refused later, with a message of their own
        return []
    modules = dict(root_module.named_modules())
    calls = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], MergeBatchNorm.batch_norm_type):
            continue
        source = node.args[0] if node.args else None
        if (isinstance(source, torch.fx.Node) and source.op == "call_module" and len(source.users) == 1
                and isinstance(modules[source.target], MergeBatchNorm.linear_type)
                and calls[source.target] == 1 and calls[node.target] == 1
                and modules[node.target].track_running_stats and modules[node.target].affine):
            pairs.append((modules[source.target], modules[node.target]))
    return pairs


class ExplicitMultiheadAttention(torch.nn.Module):
    """``nn.MultiheadAttention`` written out as the operations it computes — query/key/value projections as
    ``nn.Linear`` layers, ``softmax(q k^T / sqrt(d)) v`` and the output projection (the same ``out_proj`` module) — so
    that each step can carry its LRP rule, and the heads' outputs pass ``heads`` (:class:`.layers.AttentionHeads`).
    Computes what the module computes, in eval mode."""

    def __init__(self, attention):
        super().__init__()
        if attention.bias_k is not None or attention.add_zero_attn:
            raise NotImplementedError("nn.MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
        embed, heads = attention.embed_dim, attention.num_heads
        self.num_heads, self.head_dim, self.batch_first = heads, embed // heads, attention.batch_first
        if attention._qkv_same_embed_dim:
            weights = attention.in_proj_weight.detach().chunk(3)
            sizes = (embed, embed, embed)
        else:
            weights = (attention.q_proj_weight.detach(), attention.k_proj_weight.detach(),
                       attention.v_proj_weight.detach())
            sizes = (embed, attention.kdim, attention.vdim)
        biases = (attention.in_proj_bias.detach().chunk(3) if attention.in_proj_bias is not None
                  else (None, None, None))
        for name, weight, bias, size in zip(("q_proj", "k_proj", "v_proj"), weights, biases, sizes):
            linear = torch.nn.Linear(size, embed, bias=bias is not None, device=weight.device, dtype=weight.dtype)
            linear.weight = torch.nn.Parameter(weight.clone(), requires_grad=False)
            if bias is not None:
                linear.bias = torch.nn.Parameter(bias.clone(), requires_grad=False)
            setattr(self, name, linear)
        self.heads, self.out_proj = AttentionHeads(heads), attention.out_proj

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        q = self.q_proj(query).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
        k = self.k_proj(key).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(value).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
        scores = (q * self.head_dim ** -0.5) @ k.transpose(-2, -1)
        if attn_mask is not None:
            scores = (scores.masked_fill(attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                      else scores + attn_mask)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :].bool(), float("-inf"))
        weights = scores.softmax(-1)
        output = self.out_proj(self.heads((weights @ v).transpose(1, 2)).flatten(2))  # heads (B, N, heads, d)
        if not self.batch_first:
            output = output.transpose(0, 1)
        if not need_weights:
            return output, None
        return output, weights.mean(1) if average_attn_weights else weights


class ExplicitAttention:
    """Replace every ``nn.MultiheadAttention`` of a (private) model by :class:`ExplicitMultiheadAttention`. Not
    reverted: only ever applied to the engine's own copy of a model."""

    def apply(self, root_module):
        for parent in list(root_module.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is torch.nn.MultiheadAttention:
                    setattr(parent, name, ExplicitMultiheadAttention(child))
        return []
