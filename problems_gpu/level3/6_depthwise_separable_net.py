# GPU-sized copy of problems/level3/8_depthwise_separable_net.py (MobileNet-style).
import torch
import torch.nn as nn

BATCH = 256
IN_CHANNELS = 3
IMAGE_SIZE = 96
NUM_CLASSES = 100


def separable(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


class Model(nn.Module):
    """MobileNet-style network: strided stem conv, four depthwise-separable blocks
    (depthwise 3x3 + pointwise 1x1, BN in training mode, ReLU6), global average pool, linear."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU6(),
        )
        self.blocks = nn.Sequential(
            separable(32, 64, 1),
            separable(64, 128, 2),
            separable(128, 128, 1),
            separable(128, 256, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE)]


def get_init_inputs():
    return [IN_CHANNELS, NUM_CLASSES]
