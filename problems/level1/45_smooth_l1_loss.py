import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 512
DIM = 16384
BETA = 0.5


class Model(nn.Module):
    """Smooth L1 (Huber-like) loss with beta 0.5, mean reduction."""

    def __init__(self, beta):
        super().__init__()
        self.beta = beta

    def forward(self, predictions, targets):
        return F.smooth_l1_loss(predictions, targets, beta=self.beta)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [BETA]
