# GPU-sized copy of problems/level2/2_linear_gelu_layernorm.py (gemm of 77 GFLOP).
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
IN_FEATURES = 768
OUT_FEATURES = 1536


class Model(nn.Module):
    """Linear layer, GELU, then LayerNorm over the features."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)

    def forward(self, x):
        return self.norm(F.gelu(self.linear(x)))


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
