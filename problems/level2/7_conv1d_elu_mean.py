import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
IN_CHANNELS = 64
OUT_CHANNELS = 128
LENGTH = 2048
KERNEL_SIZE = 7


class Model(nn.Module):
    """Conv1d (kernel 7, stride 2), ELU, then the mean over the length dimension."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=2)

    def forward(self, x):
        return torch.mean(F.elu(self.conv(x)), dim=2)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, LENGTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL_SIZE]
