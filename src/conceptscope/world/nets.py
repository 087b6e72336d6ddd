"""Architectures of the shipped shapes-world models, shared by training and loading.

Both are laid out like their torchvision counterparts so that LRP tooling written for those
(zennit's VGG and ResNet canonizers, layer names such as ``features.0`` or ``layer2.0.conv1``)
applies unchanged: every ReLU is its own ``nn.ReLU`` module (not inplace), and the ResNet is
built from torchvision's ``BasicBlock``.
"""

from torch import nn
from torchvision.models.resnet import BasicBlock


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
