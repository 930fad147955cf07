# GPU-sized copy of problems/level1/10_conv2d_depthwise.py (memory-bound, 1 GiB input).
import os
import torch
import torch.nn as nn

# KFORGE_GPU_SCALE (default 1) shrinks the batch for quick runs (bench/cuda.sh prints it).
SCALE = float(os.environ.get("KFORGE_GPU_SCALE", "1"))
BATCH = max(1, int(256 * SCALE))
CHANNELS = 64
HEIGHT = 128
WIDTH = 128
KERNEL_SIZE = 3


class Model(nn.Module):
    """Depthwise 2D convolution (groups == channels), padding 1, no bias."""

    def __init__(self, channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                              groups=channels, bias=False)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS, KERNEL_SIZE]
