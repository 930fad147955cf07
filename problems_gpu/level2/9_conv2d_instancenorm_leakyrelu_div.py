# GPU-sized copy of problems/level2/15_conv2d_instancenorm_leakyrelu_div.py (300 MB conv output).
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 256
IN_CHANNELS = 16
OUT_CHANNELS = 32
HEIGHT = 96
WIDTH = 96
NEGATIVE_SLOPE = 0.1
DIVISOR = 1.5


class Model(nn.Module):
    """Conv2d, InstanceNorm2d, LeakyReLU, then division by a constant."""

    def __init__(self, in_channels, out_channels, negative_slope, divisor):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.InstanceNorm2d(out_channels)
        self.negative_slope = negative_slope
        self.divisor = divisor

    def forward(self, x):
        y = F.leaky_relu(self.norm(self.conv(x)), self.negative_slope)
        return y / self.divisor


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, NEGATIVE_SLOPE, DIVISOR]
