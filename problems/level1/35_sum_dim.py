import torch
import torch.nn as nn

BATCH = 32
DIM1 = 1024
DIM2 = 1024
REDUCE_DIM = 1


class Model(nn.Module):
    """Sum over one dimension (the middle one) of a 3D tensor."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.sum(x, dim=self.dim)


def get_inputs():
    return [torch.randn(BATCH, DIM1, DIM2)]


def get_init_inputs():
    return [REDUCE_DIM]
