import torch
import torch.nn as nn

M = 640
K = 1536
N = 896


class Model(nn.Module):
    """Matrix multiplication with a transposed first operand: A is stored (K, M), C = A.T @ B."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A.T, B)


def get_inputs():
    A = torch.randn(K, M)
    B = torch.randn(K, N)
    return [A, B]


def get_init_inputs():
    return []
