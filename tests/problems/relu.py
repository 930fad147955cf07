# relu.py: test problem for the oracle; a plain ReLU on a small float tensor.
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.relu(x)


def get_inputs():
    return [torch.rand(4, 32)]


def get_init_inputs():
    return []
