import os
import torch
import torch.nn as nn

# KFORGE_GPU_SCALE (default 1) shrinks the batch for quick runs (bench/cuda.sh prints it).
SCALE = float(os.environ.get("KFORGE_GPU_SCALE", "1"))
BATCH = max(1, int(64 * SCALE))
SEQ_LEN = 1024
HIDDEN = 4096


class Model(nn.Module):
    """Layer normalisation over the last (hidden) dimension, with affine weight and bias."""

    def __init__(self, hidden):
        super().__init__()
        self.ln = nn.LayerNorm(hidden)

    def forward(self, x):
        return self.ln(x)


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, HIDDEN)]


def get_init_inputs():
    return [HIDDEN]
