import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
NUM_CLASSES = 1000


class Model(nn.Module):
    """Cross-entropy loss over class logits with integer class targets (mean reduction)."""

    def __init__(self):
        super().__init__()

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets)


def get_inputs():
    logits = torch.randn(BATCH, NUM_CLASSES)
    targets = torch.randint(0, NUM_CLASSES, (BATCH,))
    return [logits, targets]


def get_init_inputs():
    return []
