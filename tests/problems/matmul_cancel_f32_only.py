import torch
import torch.nn as nn

# tests/problems/matmul_cancel.py with a forward that refuses float64: the oracle has no float64
# reference for it (f64_unavailable), so a kernel that misses PyTorch's float32 output stays a
# mismatch.
M = 32
K = 2048
N = 32


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, w):
        if x.dtype != torch.float32:
            raise TypeError("this model runs in float32 only")
        return torch.matmul(x, w)


def get_inputs():
    a = torch.randn(M, K // 2) * 100.0
    b = torch.randn(K // 2, N) * 100.0
    return [torch.cat([a, -a], dim=1), torch.cat([b, b], dim=0)]


def get_init_inputs():
    return []
