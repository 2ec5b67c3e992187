"""A PyTorch front: metastep's step-size methods as ``torch.optim.Optimizer``s.

The same equations, hyperparameter names and defaults as the JAX methods of
:mod:`metastep.methods`, checked step by step against them in float64 (docs/torch.md)::

    import torch, metastep.torch as mst

    opt = mst.IDBD(model.parameters(), meta_step_size=1e-3, initial_step_size=1e-2)
    curv = mst.Curvature(model, loss="cross_entropy", source="gauss_newton")
    for x, y in stream:
        opt.zero_grad()
        loss, curvature = curv(x, y)      # the loss (backward done) and the diagonal curvature
        opt.step(curvature=curvature)     # one tensor per parameter, in param_groups order
    mst.step_sizes(opt)                    # the per-weight step sizes of the last step

Needs the optional extra ``torch`` (``pip install "metastep[torch]"``); the JAX core does not
import PyTorch.
"""

from metastep.torch._optimizer import MetaStepOptimizer, step_sizes
from metastep.torch.autostep import Autostep
from metastep.torch.curvature import Curvature
from metastep.torch.delta_delta import DeltaDelta
from metastep.torch.hypergradient import SGDHD, AdamHD
from metastep.torch.idbd import IDBD
from metastep.torch.metaoptimize import MetaOptimize
from metastep.torch.normalized_idbd import NormalizedIDBD
from metastep.torch.smd import SMD

__all__ = [
    "SGDHD",
    "SMD",
    "AdamHD",
    "Autostep",
    "Curvature",
    "DeltaDelta",
    "IDBD",
    "MetaOptimize",
    "MetaStepOptimizer",
    "NormalizedIDBD",
    "step_sizes",
]
