import torch
import torch.nn as nn

# x @ w with a long reduction (K = 2048) whose exact result is zero by construction: the second
# half of each row of x is minus the first half, and the second half of w repeats the first.
# PyTorch's float32 sum of terms of magnitude ~1e4 then misses zero by far more than the
# tolerance (1e-4 + 1e-4 * |ref|), while a sum accumulated in double is within it: the harness
# must verify such a kernel against the float64 reference. Redrawn trials (normal, uniform,
# heavy) break the construction and are ordinary matmuls.
M = 32
K = 2048
N = 32


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, w):
        return torch.matmul(x, w)


def get_inputs():
    a = torch.randn(M, K // 2) * 100.0
    b = torch.randn(K // 2, N) * 100.0
    return [torch.cat([a, -a], dim=1), torch.cat([b, b], dim=0)]


def get_init_inputs():
    return []
