# GPU-sized copy of problems/level2/4_conv2d_groupnorm_silu_residual.py (200 MB activations).
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 256
CHANNELS = 48
HEIGHT = 64
WIDTH = 64
GROUPS = 8


class Model(nn.Module):
    """Conv2d 3x3 (channels preserved), GroupNorm, SiLU, then a residual add of the input."""

    def __init__(self, channels, num_groups):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.GroupNorm(num_groups, channels)

    def forward(self, x):
        return x + F.silu(self.norm(self.conv(x)))


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS, GROUPS]
