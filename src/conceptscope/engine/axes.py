"""Which axis of a layer's output holds its concepts, decided in this one place for every layer a user can name.

Channels (dim 1) of convolutions and of maps ``(B, C, H, W)``; features (the last dim) of linear layers, of token
sequences ``(B, N, D)`` from any module (a transformer block's output: its residual stream) and of modules built of
linear layers only (a Swin block's channel-last ``(B, H, W, C)``); the heads (axis 2) of an attention's per-head outputs
``(B, N, heads, head_dim)`` marked by :class:`~conceptscope.models.AttentionHeads`. Where that guess is wrong the
user says so with ``Explainer(concept_axis={layer: axis})``; an output with no such axis (a tuple, a scalar, an axis
0 that is not the batch) is refused with an error that says what is accepted.
"""
import torch

from ..models.layers import CONCEPT_LAYER_TYPES, AttentionHeads, linear_only

CONVOLUTIONS = tuple(t for t in CONCEPT_LAYER_TYPES if t is not torch.nn.Linear)


def concept_axis(module, dims, override=None):
    """The concept axis (1, -1, 2 for heads, or the user's ``override``) of a ``dims``-dimensional output of
    ``module``."""
    if override is not None:
        return override
    if isinstance(module, AttentionHeads):
        return 2
    if isinstance(module, torch.nn.Linear) or (not isinstance(module, CONVOLUTIONS) and linear_only(module)):
        return -1
    if isinstance(module, CONVOLUTIONS):
        return 1
    return -1 if dims == 3 else 1  # tokens (B, N, D); (B, F) and maps (B, C, H, W) have theirs at 1


def patch_grid(tokens, image_size):
    """``((h, w), leading tokens)`` of a token sequence laid over the image as a row-major patch grid of the image's
    aspect ratio, with no or one leading (class) token; ``(None, 0)`` if there is none."""
    height, width = image_size
    for extra in (0, 1):
        count = tokens - extra
        for h in range(1, count + 1):
            if count % h == 0 and (count // h) * height == h * width:
                return (h, count // h), extra
    return None, 0


def activation_maps(module, view, image_size):
    """``view`` (a batch's concept view, concept axis at 1) laid on the grid of an image of ``image_size`` (H, W): maps
    ``(B, C, h, w)`` as they are; tokens ``(B, C, N)`` on their patch grid ``(B, C, h, w)`` (a class token, which has no
    patch, left out); an attention's heads ``(B, heads, N, head_dim)`` first reduced to one value per token, the
    largest of the head's dimensions (what its ActMax score takes the maximum of). Tokens on no patch grid and outputs
    without positions stay as they are."""
    if isinstance(module, AttentionHeads):
        view = view.amax(-1)
    if view.dim() == 3:
        grid, extra = patch_grid(view.shape[2], image_size)
        if grid is not None:
            return view[:, :, extra:].unflatten(2, grid)
    return view


def check_output(layer, value, batch, axis, concepts):
    """Refuse ``layer``'s recorded output ``value`` for a batch of ``batch`` images unless it is one tensor with a
    batch axis first and ``concepts`` entries (None: any number) along the concept ``axis``."""
    fix = (f"name a module whose output is one tensor (B, C, ...) or tokens (B, N, D), or pass "
           f"Explainer(concept_axis={{{layer!r}: axis}}) for a channel-last map")
    if not isinstance(value, torch.Tensor):
        kind = f"a {type(value).__name__} of {len(value)} items" if isinstance(value, (tuple, list)) else \
            type(value).__name__
        raise ValueError(f"layer {layer!r} returns {kind}, not one tensor, so it has no concept axis: {fix}")
    shape = tuple(value.shape)
    if value.dim() < 2 or shape[0] != batch:
        raise ValueError(f"layer {layer!r} returns a tensor of shape {shape} for a batch of {batch}: a concept layer's "
                         f"output needs the batch first and a concept axis after it; {fix}")
    if not (-value.dim() <= axis < value.dim()) or axis % value.dim() == 0:
        raise ValueError(f"concept_axis {axis} of layer {layer!r} is not an axis after the batch of its output "
                         f"{shape}: give 1..{value.dim() - 1} or -1..-{value.dim() - 1}")
    if concepts is not None and shape[axis] != concepts:
        raise ValueError(f"layer {layer!r} has {concepts} features (the width of the layer that writes them), but its "
                         f"output {shape} has {shape[axis]} along axis {axis}, the concept axis conceptscope chose: "
                         f"pass Explainer(concept_axis={{{layer!r}: axis}}) with the axis of its features")
