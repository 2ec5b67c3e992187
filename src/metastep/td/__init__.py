"""Temporal-difference learning: linear TD(λ) learners and their meta-learned step sizes.

- :class:`TDLearner`: linear TD(λ), accumulating traces, step sizes from any method (``ms.sgd``
  for plain TD(λ), :func:`tidbd`, :func:`autotidbd`, ``ms.adam``, ...);
- :func:`tidbd` (Kearney et al. 2018) and :func:`autotidbd` (Kearney et al. 2019): optax
  transformations for :class:`TDLearner`;
- :func:`obgd` and :func:`adaptive_obgd` (Elsayed, Vasan & Mahmood 2024): steps bounded against
  overshooting;
- :class:`TrueOnlineTD`: true online TD(λ) with a fixed step size (van Seijen et al. 2016);
- :class:`SwiftTD` (Javed, Sharifnassab & Sutton 2024): true online TD(λ) with its own step sizes;
  :class:`SparseSwiftTD`, the authors' sparse version (active features as indices, or
  :class:`SparseFeatures`);
- :class:`DeepTDLearner`: TD(λ) on a network's value (stream TD(λ) with :func:`obgd`, Elsayed
  et al. 2024), traces over its parameters; :func:`stream_mlp`, the network of stream TD(λ).

A TD problem's stream gives the target of each step as a :class:`TDTarget` (reward, per-step
discount, true value); ``ms.run_arrays(learner, xs, rewards)`` takes plain rewards with the
learner's constant discount. See docs/td.md.
"""

from metastep.td.autotidbd import AutoTIDBDState, autotidbd
from metastep.td.deep import DeepTDLearner, DeepTDLearnerState, stream_mlp
from metastep.td.obgd import AdaptiveObGDState, ObGDState, adaptive_obgd, obgd
from metastep.td.learner import SIDE_SIGNALS, TDLearner, TDLearnerState, TDTarget
from metastep.td.sparse_swifttd import SparseFeatures, SparseSwiftTD, SparseSwiftTDState
from metastep.td.swifttd import SwiftTD, SwiftTDState
from metastep.td.tidbd import FORMS, TIDBDState, tidbd
from metastep.td.true_online import TrueOnlineTD, TrueOnlineTDState

__all__ = [
    "FORMS",
    "SIDE_SIGNALS",
    "AdaptiveObGDState",
    "AutoTIDBDState",
    "DeepTDLearner",
    "DeepTDLearnerState",
    "ObGDState",
    "SparseFeatures",
    "SparseSwiftTD",
    "SparseSwiftTDState",
    "SwiftTD",
    "SwiftTDState",
    "TDLearner",
    "TDLearnerState",
    "TDTarget",
    "TIDBDState",
    "TrueOnlineTD",
    "TrueOnlineTDState",
    "adaptive_obgd",
    "autotidbd",
    "obgd",
    "stream_mlp",
    "tidbd",
]
