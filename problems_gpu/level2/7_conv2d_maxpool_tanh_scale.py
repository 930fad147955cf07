# GPU-sized copy of problems/level2/6_conv2d_maxpool_tanh_scale.py (260 MB conv output).
import torch
import torch.nn as nn

BATCH = 128
IN_CHANNELS = 16
OUT_CHANNELS = 32
HEIGHT = 128
WIDTH = 128
KERNEL_SIZE = 3
POOL_SIZE = 2
SCALE = 2.0


class Model(nn.Module):
    """Conv2d, 2x2 max pooling, tanh, then multiplication by a constant."""

    def __init__(self, in_channels, out_channels, kernel_size, pool_size, scale):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.pool = nn.MaxPool2d(pool_size)
        self.scale = scale

    def forward(self, x):
        return torch.tanh(self.pool(self.conv(x))) * self.scale


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL_SIZE, POOL_SIZE, SCALE]
