"""Why does this image match this text? A CLIP model's image tower as a classifier whose classes are texts."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .foundation import OpenClip


class TextMatch(torch.nn.Module):
    """The cosine similarities (B, texts) between images and ``texts`` under an open_clip model (``foundation``, e.g.
    ``cs.semantics.clip(...)`` or the shapes world's ``world.clip``), computed through its image tower only.

    It is a classifier whose classes are the texts, so ``cs.Explainer(match, classes=match.texts)`` explains a match
    like a class — heatmap, concept ranking, conditional heatmaps, composition, the explorer — and
    ``cs.Contrast(text_a, text_b)`` explains "this text rather than that one". The texts are embedded once by the text
    tower. The image embedding is normalised by an RMS norm whose scale the rules hold constant (as LayerNorm's), so
    the relevance of a text starts at its cosine similarity. Inputs are what ``preprocess`` returns.
    """

    def __init__(self, foundation: OpenClip, texts: Sequence[str]):
        super().__init__()
        if not isinstance(foundation, OpenClip):
            raise TypeError(f"expected an open_clip foundation model (cs.semantics.clip(...) or world.clip), got "
                            f"{type(foundation).__name__}")
        if isinstance(texts, str) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"texts must be a non-empty list of non-empty strings, got {texts!r}")
        if len(set(texts)) != len(texts):
            raise ValueError(f"texts must be distinct (they name the explained outputs), got {list(texts)}")
        self.texts = list(texts)
        self.preprocess = foundation.preprocess
        self.visual = foundation.model.visual
        with torch.no_grad():
            embeddings = foundation.encode_texts(self.texts).float()
        self.dim = embeddings.shape[-1]
        # rms_norm(e) = sqrt(dim) e / |e|, so a unit text direction divided by sqrt(dim) gives the cosine
        self.register_buffer("directions", F.normalize(embeddings, dim=-1) / self.dim ** 0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(self.visual(images).float(), (self.dim,), eps=1e-12) @ self.directions.T
