# inplace_relu.py: test problem for the oracle; in-place ops (nn.ReLU(inplace=True), mul_)
# that functionalization must turn into pure ops.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, kernel_size=3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.act(self.conv(x))
        y.mul_(2.0)
        return y


def get_inputs():
    return [torch.randn(1, 2, 6, 6)]


def get_init_inputs():
    return []
