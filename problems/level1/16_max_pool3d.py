import torch
import torch.nn as nn

BATCH = 4
CHANNELS = 16
DEPTH = 32
HEIGHT = 64
WIDTH = 64
KERNEL_SIZE = 2
STRIDE = 2


class Model(nn.Module):
    """3D max pooling with non-overlapping 2x2x2 windows."""

    def __init__(self, kernel_size, stride):
        super().__init__()
        self.pool = nn.MaxPool3d(kernel_size, stride=stride)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, DEPTH, HEIGHT, WIDTH)]


def get_init_inputs():
    return [KERNEL_SIZE, STRIDE]
