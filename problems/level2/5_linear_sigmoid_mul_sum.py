import torch
import torch.nn as nn

BATCH = 1024
IN_FEATURES = 1024
OUT_FEATURES = 512


class Model(nn.Module):
    """Linear layer, sigmoid, multiplication by a learned per-feature weight, sum over features."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.weight = nn.Parameter(torch.randn(out_features))

    def forward(self, x):
        y = torch.sigmoid(self.linear(x)) * self.weight
        return torch.sum(y, dim=1)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
