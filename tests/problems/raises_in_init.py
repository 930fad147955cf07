# raises_in_init.py: bad test problem for the oracle; the constructor raises.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("constructor refuses on purpose")

    def forward(self, x):
        return x


def get_inputs():
    return [torch.rand(2)]


def get_init_inputs():
    return []
