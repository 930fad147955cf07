# not_a_problem.py: bad test problem for the oracle; valid Python without a Model class.
import torch


def get_inputs():
    return [torch.rand(2)]


def get_init_inputs():
    return []
