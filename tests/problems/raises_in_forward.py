# raises_in_forward.py: bad test problem for the oracle; the forward raises.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        raise RuntimeError("forward refuses on purpose")


def get_inputs():
    return [torch.rand(2)]


def get_init_inputs():
    return []
