# GPU-sized copy of problems/level1/3_bmm.py (137 GFLOP).
import torch
import torch.nn as nn

BATCH = 64
M = 1024
K = 1024
N = 1024


class Model(nn.Module):
    """Batched matrix multiplication: (B, M, K) @ (B, K, N) -> (B, M, N)."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.bmm(A, B)


def get_inputs():
    A = torch.randn(BATCH, M, K)
    B = torch.randn(BATCH, K, N)
    return [A, B]


def get_init_inputs():
    return []
