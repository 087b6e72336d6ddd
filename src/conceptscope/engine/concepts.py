"""Concept notions: how a concept selects part of a layer's relevance (CRP's condition masks)."""
import torch

from .arguments import channel_ids


class ChannelConcept:
    """A concept is one channel of a layer: every spatial position of that channel belongs to it.

    A concept notion answers three questions, which is all the engine asks of it, so spatial or neuron-group concepts
    fit by implementing the same three methods.
    """

    def count(self, layer_output):
        """Number of concepts the layer has."""
        return layer_output.shape[1]

    def masks(self, layer_output, ids):
        """Masks of shape ``(len(ids), *layer_output.shape)``, one per concept id, 1 where the concept lives."""
        device = layer_output.device
        masks = torch.zeros((len(ids), *layer_output.shape), dtype=layer_output.dtype, device=device)
        masks[torch.arange(len(ids), device=device), :, torch.as_tensor(ids, device=device)] = 1
        return masks

    def attribute(self, relevance, weights=None):
        """Relevance per concept ``(batch, concepts)``: summed over space, optionally weighted by ``weights`` (HxW)."""
        if weights is not None:
            relevance = relevance * weights
        return relevance.flatten(2).sum(2) if relevance.dim() > 2 else relevance

    def check_ids(self, layer, layer_output, ids):
        """Return ``ids`` as a list of ints, or raise a clear error if empty, not integers, or out of range."""
        return channel_ids(layer, ids, self.count(layer_output))
