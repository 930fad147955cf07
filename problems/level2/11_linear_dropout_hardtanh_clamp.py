import torch
import torch.nn as nn

BATCH = 512
IN_FEATURES = 1024
OUT_FEATURES = 1024
CLAMP_MIN = -0.25
CLAMP_MAX = 0.75


class Model(nn.Module):
    """Linear layer, Dropout with p=0 (an identity), Hardtanh, then clamp to a narrower range."""

    def __init__(self, in_features, out_features, clamp_min, clamp_max):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(p=0.0)
        self.act = nn.Hardtanh()
        self.clamp_min = clamp_min
        self.clamp_max = clamp_max

    def forward(self, x):
        y = self.act(self.dropout(self.linear(x)))
        return torch.clamp(y, min=self.clamp_min, max=self.clamp_max)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES, CLAMP_MIN, CLAMP_MAX]
