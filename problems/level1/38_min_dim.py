import torch
import torch.nn as nn

BATCH = 16
DIM1 = 256
DIM2 = 1024
REDUCE_DIM = 1


class Model(nn.Module):
    """Minimum values over the middle dimension of a 3D tensor."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.min(x, dim=self.dim)[0]


def get_inputs():
    return [torch.randn(BATCH, DIM1, DIM2)]


def get_init_inputs():
    return [REDUCE_DIM]
