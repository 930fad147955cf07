import torch
import torch.nn as nn

M = 8192
K = 2048


class Model(nn.Module):
    """Matrix-vector product: (M, K) @ (K, 1) -> (M, 1)."""

    def __init__(self):
        super().__init__()

    def forward(self, A, x):
        return torch.matmul(A, x)


def get_inputs():
    A = torch.randn(M, K)
    x = torch.randn(K, 1)
    return [A, x]


def get_init_inputs():
    return []
