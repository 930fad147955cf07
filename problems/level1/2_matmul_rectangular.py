import torch
import torch.nn as nn

M = 512
K = 2048
N = 768


class Model(nn.Module):
    """Rectangular matrix multiplication: (M, K) @ (K, N) -> (M, N)."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


def get_inputs():
    A = torch.randn(M, K)
    B = torch.randn(K, N)
    return [A, B]


def get_init_inputs():
    return []
