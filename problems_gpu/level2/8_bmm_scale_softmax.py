# GPU-sized copy of problems/level2/9_bmm_scale_softmax.py (512 MB of scores).
import torch
import torch.nn as nn

BATCH_HEADS = 512
SEQ_LEN = 512
HEAD_DIM = 64


class Model(nn.Module):
    """Attention scores: softmax(Q @ K^T / sqrt(d)) with batched matmul."""

    def __init__(self, head_dim):
        super().__init__()
        self.scale = 1.0 / (head_dim ** 0.5)

    def forward(self, q, k):
        scores = torch.bmm(q, k.transpose(1, 2)) * self.scale
        return torch.softmax(scores, dim=-1)


def get_inputs():
    q = torch.randn(BATCH_HEADS, SEQ_LEN, HEAD_DIM)
    k = torch.randn(BATCH_HEADS, SEQ_LEN, HEAD_DIM)
    return [q, k]


def get_init_inputs():
    return [HEAD_DIM]
