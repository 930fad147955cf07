# constant_output.py: test problem for the oracle; the output does not depend on the input
# (what the harness must mark degenerate). It also prints, which must not reach stdout.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        print("constant_output forward called")
        return self.w * 2.0 + x.sum() * 0.0


def get_inputs():
    return [torch.rand(4, 4)]


def get_init_inputs():
    return []
