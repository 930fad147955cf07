import torch
import torch.nn as nn

BATCH = 16
SEQ_LEN = 256
HIDDEN = 1024
EPS = 1e-6


class Model(nn.Module):
    """RMS normalisation over the last dimension, written by hand:
    x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, hidden, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(hidden) * 0.1 + 1.0)

    def forward(self, x):
        ms = torch.mean(x * x, dim=-1, keepdim=True)
        return x * torch.rsqrt(ms + self.eps) * self.weight


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, HIDDEN)]


def get_init_inputs():
    return [HIDDEN, EPS]
