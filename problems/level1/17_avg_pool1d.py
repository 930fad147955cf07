import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 64
LENGTH = 8192
KERNEL_SIZE = 8
STRIDE = 4
PADDING = 2


class Model(nn.Module):
    """1D average pooling (kernel 8, stride 4, padding 2; padding counts in the average)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.pool = nn.AvgPool1d(kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, LENGTH)]


def get_init_inputs():
    return [KERNEL_SIZE, STRIDE, PADDING]
