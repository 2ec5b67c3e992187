"""Shared by the torch tests: a float64 tanh MLP with given weights."""

import torch


def tanh_mlp(layers) -> torch.nn.Sequential:
    """Linear layers with the ``(weight [out, in], bias [out])`` NumPy arrays of ``layers``,
    tanh between them, in float64."""
    modules = []
    for w, b in layers:
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules += [linear, torch.nn.Tanh()]
    return torch.nn.Sequential(*modules[:-1])
