import torch
import torch.nn as nn

M = 4096
K = 4096
N = 4096


class Model(nn.Module):
    """Matrix product y = x @ W with W a (K, N) weight scaled by 1/sqrt(K) (about 137 GFLOP).

    W is a parameter, not a second random input: the reference is float32, and for a product
    of two unit-variance inputs its own rounding error passes the 1e-4 tolerance on a few
    elements in a million already at K = 256 (seen on the H100), so an exact kernel fails."""

    def __init__(self, k, n):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(k, n) / k ** 0.5)

    def forward(self, x):
        return torch.matmul(x, self.weight)


def get_inputs():
    return [torch.randn(M, K)]


def get_init_inputs():
    return [K, N]
