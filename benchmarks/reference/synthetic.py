"""Synthetic concept embeddings shared by the scores benchmark (benchmarks/semantics.py) and the reference script it
runs in another venv (semanticlens_scores.py), so both time the same tensor. Needs torch only."""
import torch


def embeddings(concepts, refs, dim, seed):
    """Unit vectors (concepts, refs, dim): references around one random direction per concept, or two for every
    other concept, so that the two-cluster polysemanticity score has some structure to find."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(concepts, 2, dim, generator=generator), dim=-1)
    which = torch.randint(0, 2, (concepts, refs), generator=generator) * (torch.arange(concepts) % 2)[:, None]
    picked = centres.gather(1, which[..., None].expand(-1, -1, dim))
    noise = torch.randn(concepts, refs, dim, generator=generator) / dim ** 0.5
    return torch.nn.functional.normalize(picked + noise, dim=-1)
