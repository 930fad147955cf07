import torch
import torch.nn as nn

BATCH = 8
SEQ_LEN = 128
D_MODEL = 256
NUM_HEADS = 8
FF_DIM = 1024


class Model(nn.Module):
    """Post-norm transformer encoder block built on nn.MultiheadAttention (batch_first),
    followed by a ReLU feed-forward network; residual connections and LayerNorm after each."""

    def __init__(self, d_model, num_heads, ff_dim):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, num_heads, dropout=0.0, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Linear(ff_dim, d_model))
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x):
        attn_out = self.attn(x, x, x, need_weights=False)[0]
        x = self.norm1(x + attn_out)
        return self.norm2(x + self.ff(x))


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, D_MODEL)]


def get_init_inputs():
    return [D_MODEL, NUM_HEADS, FF_DIM]
