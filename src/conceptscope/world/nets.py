"""Architectures of the shipped shapes-world models, shared by training and loading.

The CNNs are laid out like their torchvision counterparts so that LRP tooling written for those
(zennit's VGG and ResNet canonizers, layer names such as ``features.0`` or ``layer2.0.conv1``)
applies unchanged: every ReLU is its own ``nn.ReLU`` module (not inplace), and the ResNet is
built from torchvision's ``BasicBlock``. The ViT writes its attention out (``q k^T``, softmax,
``A v``) so that AttnLRP's rules reach the attention weights, and names every part (``blocks.3``,
``blocks.3.attn.q_proj``, ``blocks.3.mlp.fc2``) for concept layers.
"""

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..models.layers import AttentionHeads


class ShapesVGG(nn.Module):
    """Small VGG-style CNN with BatchNorm (~100k parameters): ``features``, ``avgpool``, ``classifier``."""

    def __init__(self, num_classes: int, widths=(16, 32, 64, 64, 64), pool_after=(0, 1, 3)):
        super().__init__()
        layers, channels = [], 3
        for k, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if k in pool_after:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Linear(channels, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


class ShapesResNet(nn.Module):
    """Small ResNet of torchvision ``BasicBlock``s with torchvision's attribute layout.

    ``conv1, bn1, relu, maxpool, layer1..layer3, avgpool, fc``; one block per stage, widths
    16/32/64, a 3x3 stride-1 stem for small images (~78k parameters).
    """

    def __init__(self, num_classes: int, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(2)
        channels = widths[0]
        for k, width in enumerate(widths):
            stride = 1 if k == 0 else 2
            downsample = None
            if stride != 1 or channels != width:
                downsample = nn.Sequential(nn.Conv2d(channels, width, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(width))
            block = BasicBlock(channels, width, stride=stride, downsample=downsample)
            block.relu = nn.ReLU()  # torchvision's is inplace, which breaks backward hooks on it
            setattr(self, f"layer{k + 1}", nn.Sequential(block))
            channels = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for k in range(1, 4):
            x = getattr(self, f"layer{k}")(x)
        return self.fc(self.avgpool(x).flatten(1))


class Attention(nn.Module):
    """Multi-head self-attention written out: ``softmax(q k^T / sqrt(d)) v``, heads joined by ``out_proj``.

    Not fused (``F.scaled_dot_product_attention``): AttnLRP needs the softmax and both products as graph operations.
    The heads' outputs pass ``heads`` (:class:`~conceptscope.models.AttentionHeads`), so a head can be a concept.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.scale = (dim // heads) ** -0.5
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.heads, self.out_proj = AttentionHeads(heads), nn.Linear(dim, dim)

    def _split(self, x):
        return x.unflatten(-1, (self.heads.num_heads, -1)).transpose(1, 2)  # (B, heads, N, d)

    def forward(self, x):
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(x)), self._split(self.v_proj(x))
        weights = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        return self.out_proj(self.heads((weights @ v).transpose(1, 2)).flatten(2))  # heads (B, N, heads, d)


class MLP(nn.Module):
    """``fc2(GELU(fc1(x)))``, the transformer block's feed-forward part."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``; tokens (B, N, dim)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), MLP(dim, mlp_ratio * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ShapesViT(nn.Module):
    """Small vision transformer (~90k parameters) for 64 px images: 8 px patches (an 8 x 8 grid of tokens after a
    class token), learnt position embeddings, ``depth`` pre-norm blocks, the class token's final norm into ``head``.

    ``patch_embed, cls_token, pos_embed, blocks.0..blocks.{depth-1}, norm, head``, as timm names them. The patch
    embedding is a two-stage patchify (4 px, GELU, 2 x 2 of those; "hMLP stem", Touvron et al. 2022): still one token
    per 8 px patch with no overlap, but a nonlinear one, which a ViT this small trains much faster with.
    """

    def __init__(self, num_classes: int, image_size: int = 64, patch_size: int = 8, dim: int = 48, depth: int = 4,
                 heads: int = 4, mlp_ratio: int = 2):
        super().__init__()
        tokens = (image_size // patch_size) ** 2
        if patch_size % 2:
            raise ValueError(f"patch_size must be even (two patchify stages), got {patch_size}")
        half = patch_size // 2
        self.patch_embed = nn.Sequential(nn.Conv2d(3, dim // 2, half, stride=half), nn.GELU(),
                                         nn.Conv2d(dim // 2, dim, 2, stride=2))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, tokens, dim), row by row
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])
