import torch
import torch.nn as nn

N = 4096


class Model(nn.Module):
    """Square matrix product C = A @ B (float32, about 137 GFLOP)."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return []
