import torch
import torch.nn as nn

BATCH = 1024
IN_FEATURES = 1024
OUT_FEATURES = 512


class Model(nn.Module):
    """Linear layer, BatchNorm1d in training mode (batch statistics), ReLU."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x):
        return torch.relu(self.bn(self.linear(x)))


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
