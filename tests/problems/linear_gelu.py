# linear_gelu.py: test problem for the oracle; a small Linear followed by GELU.
import torch
import torch.nn as nn

IN, OUT, BATCH = 16, 8, 4


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x):
        return nn.functional.gelu(self.fc(x))


def get_inputs():
    return [torch.randn(BATCH, IN)]


def get_init_inputs():
    return [IN, OUT]
