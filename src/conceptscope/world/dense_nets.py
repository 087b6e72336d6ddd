"""Architectures of the shapes world's segmenter and detector: small fully convolutional networks that L-CRP can
trace (convolutions, BatchNorm, ReLU, a global max-pooled context branch, concatenation, bilinear upsampling).

Both answer the world's class question per object: which objects make the image's label true (``evidence_mask``).
That needs context — a cross is the class-defining object only where no yellow, dotted, ... object is in the image —
so both have a global branch: the image-wide maximum of the features, broadcast back onto every cell.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _conv(channels_in, channels_out, stride=1, dilation=1):
    return [nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=dilation, dilation=dilation),
            nn.BatchNorm2d(channels_out), nn.ReLU()]


class ContextBackbone(nn.Module):
    """``stem`` (stride 2, kept for crisp masks) and ``features`` (stride 4, ~31 px receptive field), fused with the
    image-wide ``context`` (global max pool → 1x1 conv) by ``fuse``: stride-4 features (B, 48, H/4, W/4)."""

    def __init__(self, width=48):
        super().__init__()
        self.stem = nn.Sequential(*_conv(3, 16, stride=2))
        self.features = nn.Sequential(*_conv(16, 32, stride=2), *_conv(32, width), *_conv(width, width, dilation=2))
        self.context = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Conv2d(width, 32, 1), nn.ReLU())
        self.fuse = nn.Sequential(nn.Conv2d(width + 32, width, 1), nn.ReLU())

    def forward(self, x):
        """Stride-2 stem features and stride-4 fused features."""
        stem = self.stem(x)
        features = self.features(stem)
        context = self.context(features).expand(-1, -1, features.shape[2], features.shape[3])
        return stem, self.fuse(torch.cat([features, context], 1))


class ShapesSegmenter(nn.Module):
    """Per-pixel class scores (B, num_classes, H, W) for images whose sides are multiples of 4: class 0 is the
    background, class k + 1 the world's class k."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.backbone = ContextBackbone()
        self.head = nn.Sequential(nn.Conv2d(48 + 16, 32, 1), nn.ReLU(), nn.Conv2d(32, num_classes, 1))

    def forward(self, x):
        stem, features = self.backbone(x)
        features = F.interpolate(features, scale_factor=2, mode="bilinear", align_corners=False)
        scores = self.head(torch.cat([features, stem], 1))
        return F.interpolate(scores, scale_factor=2, mode="bilinear", align_corners=False)


class ShapesDetector(nn.Module):
    """A CenterNet-style single-stage detector; its forward stops before any decoding or NMS.

    Returns ``(heatmap, boxes)`` on the stride-4 grid: ``heatmap`` (B, classes, H/4, W/4) holds the logit that an
    object of the class is centred in the cell, ``boxes`` (B, 4, H/4, W/4) the distances in pixels from the cell's
    centre to the box's left, top, right and bottom edges. :func:`conceptscope.world.detection.decode` turns them into
    boxes (peaks, then non-maximum suppression).
    """

    stride = 4

    def __init__(self, num_classes: int):
        super().__init__()
        self.backbone = ContextBackbone()
        self.heatmap = nn.Sequential(nn.Conv2d(48, 32, 1), nn.ReLU(), nn.Conv2d(32, num_classes, 1))
        self.boxes = nn.Sequential(nn.Conv2d(48, 32, 1), nn.ReLU(), nn.Conv2d(32, 4, 1))
        nn.init.constant_(self.heatmap[-1].bias, -2.19)  # CenterNet's prior: sigmoid ≈ 0.1 at the start

    def forward(self, x):
        _, features = self.backbone(x)
        return self.heatmap(features), self.boxes(features)
