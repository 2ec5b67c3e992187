"""Step-size methods, each an optax ``GradientTransformationExtraArgs`` over any pytree."""

from metastep.methods._common import step_sizes
from metastep.methods.idbd import IDBDState, idbd

__all__ = ["IDBDState", "idbd", "step_sizes"]
