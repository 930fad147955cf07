import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32
SEQ_LEN = 512
HIDDEN = 2048


class Model(nn.Module):
    """Projection by a weight matrix (no bias), LayerNorm, then a residual add of the input."""

    def __init__(self, hidden):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, hidden) / hidden ** 0.5)
        self.norm_weight = nn.Parameter(torch.ones(hidden))
        self.norm_bias = nn.Parameter(torch.zeros(hidden))
        self.hidden = hidden

    def forward(self, x):
        y = torch.matmul(x, self.weight)
        y = F.layer_norm(y, (self.hidden,), self.norm_weight, self.norm_bias, 1e-5)
        return x + y


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, HIDDEN)]


def get_init_inputs():
    return [HIDDEN]
