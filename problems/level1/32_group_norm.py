import torch
import torch.nn as nn

BATCH = 32
CHANNELS = 64
GROUPS = 8
HEIGHT = 64
WIDTH = 64


class Model(nn.Module):
    """Group normalisation (8 groups of 8 channels) with affine weight and bias."""

    def __init__(self, num_groups, num_channels):
        super().__init__()
        self.gn = nn.GroupNorm(num_groups, num_channels)

    def forward(self, x):
        return self.gn(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [GROUPS, CHANNELS]
