# GPU-sized copy of problems/level3/5_lstm_unrolled.py (about 100 GFLOP).
import torch
import torch.nn as nn

SEQ_LEN = 8
BATCH = 4096
INPUT_SIZE = 256
HIDDEN_SIZE = 512


class Model(nn.Module):
    """LSTM cell written with Linear layers and sigmoid/tanh, unrolled over a fixed number of
    time steps. Returns the hidden states of every step stacked: (seq_len, batch, hidden)."""

    def __init__(self, input_size, hidden_size, seq_len):
        super().__init__()
        self.hidden_size = hidden_size
        self.seq_len = seq_len
        self.x2h = nn.Linear(input_size, 4 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size)

    def forward(self, x, h0, c0):
        h, c = h0, c0
        outputs = []
        for t in range(self.seq_len):
            gates = self.x2h(x[t]) + self.h2h(h)
            i, f, g, o = gates.chunk(4, dim=1)
            i = torch.sigmoid(i)
            f = torch.sigmoid(f)
            g = torch.tanh(g)
            o = torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=0)


def get_inputs():
    x = torch.randn(SEQ_LEN, BATCH, INPUT_SIZE)
    h0 = torch.randn(BATCH, HIDDEN_SIZE)
    c0 = torch.randn(BATCH, HIDDEN_SIZE)
    return [x, h0, c0]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN_SIZE, SEQ_LEN]
