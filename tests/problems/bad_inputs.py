# bad_inputs.py: bad test problem for the oracle; get_inputs() returns something that is
# neither a tensor nor a number.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x


def get_inputs():
    return ["not a tensor"]


def get_init_inputs():
    return []
