"""Running top-k: keep the k best (score, dataset index) pairs per row, merged exactly and order-independently.

Entries are ranked by score (descending), ties broken by dataset index (ascending), so merging the same candidates in
any grouping or order (batch by batch, after a resume, across ranks) gives bit-identical buffers. Empty slots hold
score ``-inf`` and index ``-1``; they rank last and are never taken for a real entry.
"""
import torch

EMPTY_INDEX = -1


def empty(shape, k, device=None):
    """Buffers ``(values, indices)`` of shape ``(*shape, k)``, all empty."""
    values = torch.full((*shape, k), float("-inf"), device=device)
    indices = torch.full((*shape, k), EMPTY_INDEX, dtype=torch.int64, device=device)
    return values, indices


def merge(values, indices, new_values, new_indices, k):
    """The top ``k`` along the last dimension of the union of ``(values, indices)`` and the candidates.

    ``torch.topk`` does not define which of several equal scores it keeps, so the union is ordered by two stable sorts:
    by index, then by score (descending), which keeps equal scores in index order. NaN scores count as empty.
    """
    new_values = new_values.to(values.dtype)
    new_values = torch.where(torch.isnan(new_values), float("-inf"), new_values)
    new_indices = torch.where(new_values == float("-inf"), EMPTY_INDEX, new_indices.to(torch.int64))
    all_values = torch.cat([values, new_values], -1)
    all_indices = torch.cat([indices, new_indices], -1)
    order = torch.sort(all_indices, dim=-1, stable=True).indices
    all_values, all_indices = all_values.gather(-1, order), all_indices.gather(-1, order)
    all_values, order = torch.sort(all_values, dim=-1, descending=True, stable=True)
    return all_values[..., :k].contiguous(), all_indices.gather(-1, order)[..., :k].contiguous()
