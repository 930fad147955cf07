import torch
import torch.nn as nn

SEQ_LEN = 8
BATCH = 64
INPUT_SIZE = 256
HIDDEN_SIZE = 512


class Model(nn.Module):
    """GRU cell written with Linear layers and sigmoid/tanh, unrolled over a fixed number of
    time steps. Returns the final hidden state (batch, hidden)."""

    def __init__(self, input_size, hidden_size, seq_len):
        super().__init__()
        self.seq_len = seq_len
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h0):
        h = h0
        for t in range(self.seq_len):
            xr, xz, xn = self.x2h(x[t]).chunk(3, dim=1)
            hr, hz, hn = self.h2h(h).chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1.0 - z) * n + z * h
        return h


def get_inputs():
    x = torch.randn(SEQ_LEN, BATCH, INPUT_SIZE)
    h0 = torch.randn(BATCH, HIDDEN_SIZE)
    return [x, h0]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN_SIZE, SEQ_LEN]
