import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 128
DIM = 65536
ALPHA = 0.8


class Model(nn.Module):
    """ELU activation with a configurable alpha, elementwise."""

    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, alpha=self.alpha)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [ALPHA]
