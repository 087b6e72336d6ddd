"""The shapes world's tiny CLIP: an open_clip ``CLIP`` small enough to ship and to train on a CPU.

A ModifiedResNet image tower (64 px) and a 2-layer text tower over open_clip's bundled BPE
vocabulary. The checkpoint stores fp16 weights and only the token-embedding rows that the
training texts use (``token_ids``: training remaps them to 0..n-1, in order, so the end-of-text
token stays the largest id, which open_clip pools at); ``load_clip`` scatters them into a zero
embedding, so words the model never saw embed as zeros.
"""

import open_clip
import torch
from safetensors.torch import load_file

from ..semantics.foundation import OpenClip
from .dataset import MEAN, STD
from .files import ASSETS

NAME = "shapes-tiny-clip"
WEIGHTS = ASSETS / "shapes_clip.safetensors"
EMBED_DIM = 64
CONTEXT_LENGTH = 32
VISION_CFG = dict(image_size=64, layers=[1, 1, 1, 1], width=12, head_width=32, patch_size=None)
TEXT_CFG = dict(context_length=CONTEXT_LENGTH, vocab_size=49408, width=128, heads=4, layers=2, mlp_ratio=2.0)
#: crops of any aspect are scaled to fit 64 px and padded with black: nothing is cut off, shapes keep their form
PREPROCESS_CFG = dict(size=64, mode="RGB", mean=MEAN, std=STD, interpolation="bilinear", resize_mode="longest",
                      fill_color=0)
TOKEN_IDS = "token_embedding.ids"


def build_model(vocab_size: int = TEXT_CFG["vocab_size"]) -> open_clip.CLIP:
    """A freshly initialised tiny CLIP (train mode) with the world's preprocessing config.

    Training uses a compact ``vocab_size`` (token ids remapped in order, see ``pack``).
    """
    model = open_clip.CLIP(EMBED_DIM, vision_cfg=VISION_CFG, text_cfg=dict(TEXT_CFG, vocab_size=vocab_size))
    open_clip.model.set_model_preprocess_cfg(model, PREPROCESS_CFG)
    return model


def tokenizer() -> open_clip.SimpleTokenizer:
    """open_clip's bundled BPE tokenizer (no download) with the tiny CLIP's context length."""
    return open_clip.SimpleTokenizer(context_length=CONTEXT_LENGTH)


def pack(model, token_ids) -> dict[str, torch.Tensor]:
    """The fp16 checkpoint of ``model``, trained on a compact vocabulary: embedding row i is token ``token_ids[i]``."""
    state = {name: tensor.detach().half().contiguous() for name, tensor in model.state_dict().items()}
    state[TOKEN_IDS] = torch.as_tensor(token_ids, dtype=torch.int32)
    return state


def unpack(state) -> dict[str, torch.Tensor]:
    """A full state_dict from a checkpoint written by ``pack``."""
    state = dict(state)
    ids, rows = state.pop(TOKEN_IDS).long(), state.pop("token_embedding.weight")
    embedding = torch.zeros(TEXT_CFG["vocab_size"], rows.shape[1], dtype=rows.dtype)
    embedding[ids] = rows
    state["token_embedding.weight"] = embedding
    return state


def load_clip(device=None) -> OpenClip:
    """The shipped tiny CLIP, eval mode, float32, as an ``OpenClip`` named "shapes-tiny-clip"."""
    if not WEIGHTS.exists():
        raise FileNotFoundError(f"missing weights {WEIGHTS}; "
                                "run `python -m conceptscope.world.train_clip` to create them")
    model = build_model()
    model.load_state_dict(unpack(load_file(WEIGHTS)))
    return OpenClip(model, tokenizer(), NAME, device)
