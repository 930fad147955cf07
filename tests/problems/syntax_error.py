# syntax_error.py: bad test problem for the oracle; it does not parse.
import torch

class Model(torch.nn.Module:
    pass
