# tuple_out.py: test problem for the oracle; the forward returns a tuple of two tensors.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        s = x + y
        return s, s.sum(dim=1)


def get_inputs():
    return [torch.randn(3, 5), torch.randn(3, 5)]


def get_init_inputs():
    return []
