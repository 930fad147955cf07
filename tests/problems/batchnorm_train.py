# batchnorm_train.py: test problem for the oracle; BatchNorm2d left in training mode, so the
# forward updates running stats in place (the captured graph must drop those updates).
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(x)


def get_inputs():
    return [torch.randn(2, 3, 4, 4)]


def get_init_inputs():
    return [3]
