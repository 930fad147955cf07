import torch
import torch.nn as nn

BATCH = 32
IN_CHANNELS = 3
OUT_CHANNELS = 48
HEIGHT = 128
WIDTH = 128
KERNEL_SIZE = 7
STRIDE = 2
PADDING = 3


class Model(nn.Module):
    """Strided 2D convolution, like the stem of an image network (7x7, stride 2, padding 3)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL_SIZE, STRIDE, PADDING]
