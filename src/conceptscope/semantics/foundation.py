"""Foundation models for SemanticLens: an image/text embedding interface and its open_clip implementation.

SemanticLens needs only four things from a CLIP-like model: turn images (many small uint8 crops)
into model input, tokenize texts, and embed both into one L2-normalised space. ``clip()`` loads
any open_clip model; offline it fails fast with a message that says how to get the weights.
"""

import difflib
import os
import socket
from contextlib import nullcontext
from functools import cached_property
from unittest import mock
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F

from ..models.identity import model_digest

_PROBE_TIMEOUT_S = 3.0


class FoundationUnavailableError(RuntimeError):
    """The weights of a foundation model cannot be loaded (offline, unknown name or tag, bad file)."""


class FoundationModel:
    """What SemanticLens uses of an image/text model: preprocessing, tokenizing, normalised embeddings.

    Subclasses implement ``preprocess``, ``tokenize``, ``_image_features`` and ``_text_features``
    and set ``name``, ``device``, ``embed_dim`` (and ``digest``, the hex digest of the weights).
    """

    name: str
    digest: str
    device: torch.device
    embed_dim: int

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, embed_dim={self.embed_dim}, device={str(self.device)!r})"

    def preprocess(self, images) -> torch.Tensor:
        """Model input (N,3,S,S) float on ``device`` from uint8 HxWx3 arrays or PIL images of any size."""
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (N, context length) on ``device``."""
        raise NotImplementedError

    def _image_features(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def unknown_tokens(self, texts: list[str]) -> list[tuple[list[str], int]]:
        """Per text, ``(the tokens the model has no embedding for, decoded; how many tokens the text has)``, start,
        end and padding tokens not counted. A text made only of unknown tokens embeds like any other such text (e.g.
        as zeros): its embedding means nothing. This base class cannot tell and reports none."""
        return [([], 0) for _ in texts]

    @torch.no_grad()
    def encode_images(self, images, batch_size: int = 256) -> torch.Tensor:
        """(N, D) float32 L2-normalised embeddings on ``device`` of images (a list, or preprocessed (N,3,S,S))."""
        preprocessed = isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point()
        out = [self._image_features((images[i:i + batch_size] if preprocessed
                                     else self.preprocess(images[i:i + batch_size])).to(self.device))
               for i in range(0, len(images), batch_size)]
        return _normalized(out, self.embed_dim, self.device)

    @torch.no_grad()
    def encode_texts(self, texts, batch_size: int = 256) -> torch.Tensor:
        """(N, D) float32 L2-normalised embeddings on ``device`` of texts (a string is one text)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = [self._text_features(self.tokenize(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
        return _normalized(out, self.embed_dim, self.device)


def _normalized(chunks, dim, device):
    if not chunks:
        return torch.zeros(0, dim, device=device)
    return F.normalize(torch.cat(chunks).float(), dim=-1)


def _as_uint8_hwc(image) -> torch.Tensor:
    """uint8 HxWx3 tensor from a numpy/torch uint8 array (HxW or HxWx3/4) or a PIL image."""
    if hasattr(image, "convert"):  # PIL
        image = image.convert("RGB")
    image = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.array(image))
    if image.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (HxWx3, 0..255) or PIL images, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[..., None].expand(-1, -1, 3)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {tuple(image.shape)}")
    return image[..., :3]


class OpenClip(FoundationModel):
    """An open_clip model (eval mode) with its tokenizer and its preprocessing done in torch.

    Preprocessing follows the model's ``preprocess_cfg`` (size, mean, std, interpolation,
    resize_mode "shortest"/"longest"/"squash") but resizes same-sized images as one batch with
    ``F.interpolate`` (antialiased) instead of PIL per image: crops are many and small.
    """

    def __init__(self, model, tokenizer, name: str, device=None):
        import open_clip

        self.device = torch.device(device or "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer, self.name = tokenizer, name
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        with torch.no_grad():
            self.embed_dim = int(model.encode_image(torch.zeros(1, 3, *self.image_size, device=self.device)).shape[-1])
        self.mean = torch.tensor(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", open_clip.OPENAI_DATASET_STD), device=self.device).view(1, 3, 1, 1)
        self.interpolation = cfg.get("interpolation", "bicubic")
        self.resize_mode = cfg.get("resize_mode", "shortest")
        self.fill = cfg.get("fill_color", 0) / 255.0

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the weights (``conceptscope.models.identity.model_digest``), computed on first use."""
        return model_digest(self.model)

    def preprocess(self, images) -> torch.Tensor:
        images = [_as_uint8_hwc(image) for image in images]
        if not images:
            return torch.zeros(0, 3, *self.image_size, device=self.device)
        groups = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(i)
        out = [self._resize(torch.stack([images[i] for i in index]).to(self.device).permute(0, 3, 1, 2).float() / 255.0,
                            h, w) for (h, w, _), index in groups.items()]
        order = torch.tensor([i for index in groups.values() for i in index], device=self.device)
        out = torch.cat(out)[order.argsort()]
        return (out - self.mean) / self.std

    def _resize(self, batch, h, w):
        """Resize (and center-crop or pad) a batch of h x w images to ``image_size`` like open_clip's transform."""
        th, tw = self.image_size
        if self.resize_mode == "squash":
            size = (th, tw)
        else:
            # like torchvision's Resize(int): the matched side becomes exact, the other is truncated
            fit_height = (h / th <= w / tw) == (self.resize_mode == "shortest")
            size = (th, max(1, int(th * w / h))) if fit_height else (max(1, int(tw * h / w)), tw)
        if size != (h, w):
            mode = self.interpolation if self.interpolation in ("bilinear", "bicubic") else "nearest"
            batch = F.interpolate(batch, size=size, mode=mode, **({} if mode == "nearest" else {"antialias": True}))
            batch = batch.clamp_(0, 1)
        ph, pw = max(th - size[0], 0), max(tw - size[1], 0)
        if ph or pw:
            batch = F.pad(batch, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=self.fill)
        top, left = round((batch.shape[2] - th) / 2), round((batch.shape[3] - tw) / 2)
        return batch[:, :, top:top + th, left:left + tw]

    def tokenize(self, texts) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.device)

    @cached_property
    def _known_tokens(self) -> torch.Tensor | None:
        """(vocabulary,) bool: token ids whose embedding row is not all zero (None: no plain token embedding). The
        shipped tiny CLIP stores only the rows of the words it was trained on; every other row is zero."""
        embedding = getattr(self.model, "token_embedding", None)
        if not isinstance(embedding, torch.nn.Embedding):
            return None
        return embedding.weight.detach().ne(0).any(-1).cpu()

    def unknown_tokens(self, texts):
        known = self._known_tokens
        if known is None:
            return super().unknown_tokens(texts)
        special = {0, *getattr(self.tokenizer, "all_special_ids", ())}
        decode = getattr(self.tokenizer, "decode", None)
        found = []
        for row in self.tokenizer(list(texts)).tolist():
            content = [token for token in row if token not in special]
            unknown = [token for token in content if token >= len(known) or not known[token]]
            found.append(([decode([token]).strip() if decode else str(token) for token in unknown], len(content)))
        return found

    def _image_features(self, batch):
        return self.model.encode_image(batch)

    def _text_features(self, tokens):
        return self.model.encode_text(tokens)


def _fix_hint(name, pretrained, cache_dir):
    return (f"To fix: on a connected machine run `open_clip.create_model_and_transforms({name!r}, "
            f"pretrained={pretrained!r}, cache_dir=...)` and copy that cache here, then pass "
            f"cache_dir=<that directory>{' (now ' + repr(str(cache_dir)) + ')' if cache_dir else ''} "
            f"(or set HF_HOME / HF_HUB_CACHE); or pass pretrained=<path of a local checkpoint file>.")


def _weights_host(name, pretrained) -> str | None:
    """Host the weights of ``name``/``pretrained`` would be downloaded from (None: nothing to download)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, pretrained) if pretrained and not name.startswith("hf-hub:") else {}
    if name.startswith("hf-hub:") or cfg.get("hf_hub"):
        return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    return urlparse(cfg["url"]).hostname if cfg.get("url") else None


def _reachable(host) -> bool:
    """Whether ``host`` answers on port 443 within a few seconds (assumed so behind a proxy)."""
    if any(os.environ.get(var) for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")):
        return True
    try:
        socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def clip(name: str = "ViT-B-32", pretrained: str | None = "laion2b_s34b_b79k", device=None, cache_dir=None) -> OpenClip:
    """Load the open_clip model ``name`` with weights ``pretrained`` (a tag, or a local checkpoint path).

    Raises FoundationUnavailableError for an unknown name or tag, or when the weights are neither
    cached nor downloadable: without network the hub is not retried, cached weights still load.
    """
    import huggingface_hub.constants
    import open_clip

    local_file = pretrained is not None and os.path.isfile(str(pretrained))
    if not name.startswith(("hf-hub:", "local-dir:")) and name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
        raise FoundationUnavailableError(
            f"unknown open_clip model {name!r}; names are listed by open_clip.list_models()"
            + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""))
    if pretrained and not local_file and not name.startswith(("hf-hub:", "local-dir:")):
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise FoundationUnavailableError(
                f"unknown pretrained tag {pretrained!r} for open_clip model {name!r}; available tags: "
                f"{', '.join(tags) or 'none'}; or pass pretrained=<path of a local checkpoint file>")
    host = None if local_file or name.startswith("local-dir:") else _weights_host(name, pretrained)
    offline = host is not None and not _reachable(host)
    full_name = f"{name}/{os.path.basename(str(pretrained)) if local_file else pretrained}" if pretrained else name
    try:
        with mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True) if offline else nullcontext():
            model, _, _ = open_clip.create_model_and_transforms(name, pretrained=pretrained, cache_dir=cache_dir)
            tokenizer = open_clip.get_tokenizer(name, cache_dir=cache_dir)
    except Exception as error:
        why = f"{host} is not reachable and the weights are not in the cache" if offline else str(error)
        raise FoundationUnavailableError(
            f"cannot load open_clip model {name!r} with pretrained weights {pretrained!r}: {why}. "
            + _fix_hint(name, pretrained, cache_dir)) from error
    return OpenClip(model, tokenizer, full_name, device)
