import torch
import torch.nn as nn

M = 10240
K = 256
N = 10240


class Model(nn.Module):
    """Matrix product C = A @ B with a short inner dimension (float32, about 54 GFLOP).

    K stays at 256 because the reference is itself float32: with unit-variance inputs its
    rounding error grows about linearly with K and passes the 1e-4 tolerance near K = 1024
    (a float64-exact result then fails on a few hundred elements of a million)."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
