import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 64
DIM = 65536
BETA = 2.0
THRESHOLD = 10.0


class Model(nn.Module):
    """Softplus: log(1 + exp(beta * x)) / beta, linear above the threshold."""

    def __init__(self, beta, threshold):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x):
        return F.softplus(x, beta=self.beta, threshold=self.threshold)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [BETA, THRESHOLD]
