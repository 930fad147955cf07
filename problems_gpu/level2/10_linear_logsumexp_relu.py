# GPU-sized copy of problems/level2/16_linear_logsumexp_relu.py (gemm of 69 GFLOP).
import torch
import torch.nn as nn

BATCH = 65536
IN_FEATURES = 512
OUT_FEATURES = 1024


class Model(nn.Module):
    """Linear layer, logsumexp over the features (keepdim), ReLU."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        y = torch.logsumexp(self.linear(x), dim=1, keepdim=True)
        return torch.relu(y)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
