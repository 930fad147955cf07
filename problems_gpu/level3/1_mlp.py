import torch
import torch.nn as nn

BATCH = 2048
INPUT_SIZE = 4096
HIDDEN_SIZES = [4096, 4096, 2048]
OUTPUT_SIZE = 1024


class Model(nn.Module):
    """Four-layer perceptron: Linear+ReLU three times, then a linear output layer."""

    def __init__(self, input_size, hidden_sizes, output_size):
        super().__init__()
        layers = []
        prev = input_size
        for h in hidden_sizes:
            layers.append(nn.Linear(prev, h))
            layers.append(nn.ReLU())
            prev = h
        layers.append(nn.Linear(prev, output_size))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def get_inputs():
    return [torch.randn(BATCH, INPUT_SIZE)]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN_SIZES, OUTPUT_SIZE]
