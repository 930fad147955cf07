import os
import torch
import torch.nn as nn

# KFORGE_GPU_SCALE (default 1) shrinks the batch for quick runs (bench/cuda.sh prints it).
SCALE = float(os.environ.get("KFORGE_GPU_SCALE", "1"))
BATCH = max(1, int(8192 * SCALE))
DIM = 32768


class Model(nn.Module):
    """Softmax over the last dimension of a (batch, dim) tensor (1 GiB)."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.softmax(x, dim=1)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
