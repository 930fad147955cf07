import torch
import torch.nn as nn

BATCH = 4096
IN_FEATURES = 2048
NUM_CLASSES = 8192


class Model(nn.Module):
    """Classifier head: Linear layer then softmax over the classes."""

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=-1)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, NUM_CLASSES]
