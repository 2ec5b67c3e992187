"""Step-size methods, each an optax ``GradientTransformationExtraArgs`` over any pytree."""

from metastep.methods._signals import CurvatureVectorProduct
from metastep.methods._step_sizes import NoStepSizesError, step_sizes
from metastep.methods.adam import AdamState, adam
from metastep.methods.autostep import AutostepState, autostep
from metastep.methods.delta_delta import DeltaDeltaState, delta_delta
from metastep.methods.hypergradient import (
    AdamHypergradientState,
    HypergradientState,
    adam_hypergradient,
    hypergradient,
)
from metastep.methods.idbd import IDBDState, idbd
from metastep.methods.metaoptimize import MetaOptimizeState, metaoptimize
from metastep.methods.normalized_idbd import NormalizedIDBDState, normalized_idbd
from metastep.methods.rmsprop import RMSpropState, rmsprop
from metastep.methods.sgd import SGDState, sgd
from metastep.methods.smd import SMDState, smd

__all__ = [
    "AdamHypergradientState",
    "AdamState",
    "AutostepState",
    "CurvatureVectorProduct",
    "DeltaDeltaState",
    "HypergradientState",
    "IDBDState",
    "MetaOptimizeState",
    "NoStepSizesError",
    "NormalizedIDBDState",
    "RMSpropState",
    "SGDState",
    "SMDState",
    "adam",
    "adam_hypergradient",
    "autostep",
    "delta_delta",
    "hypergradient",
    "idbd",
    "metaoptimize",
    "normalized_idbd",
    "rmsprop",
    "sgd",
    "smd",
    "step_sizes",
]
