"""Step-size methods on neural networks: curvature signals, models, the deep learner, plots.

* :func:`extra_args`: the loss, gradient and curvature side signals of a network in one pass.
* :class:`DeepLearner`: a network trained online by a method, following the engine's protocol.
* :func:`mlp`, :class:`Model`, :func:`as_model`: a plain-JAX MLP and Flax/Equinox adapters.
* :func:`plot_layer_step_sizes`: which layers learn: a layers × time heatmap of step sizes.
"""

from metastep.deep.curvature import CURVATURES, LOSSES, extra_args, loss_value
from metastep.deep.learner import DeepLearner, DeepLearnerState
from metastep.deep.models import Model, as_model, leaf_names, mlp
from metastep.deep.plots import plot_layer_step_sizes

__all__ = [
    "CURVATURES",
    "DeepLearner",
    "DeepLearnerState",
    "LOSSES",
    "Model",
    "as_model",
    "extra_args",
    "leaf_names",
    "loss_value",
    "mlp",
    "plot_layer_step_sizes",
]
