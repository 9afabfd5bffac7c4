"""Training a small MLP on CKKS ciphertexts: the slot layout, the per-step plan, the plaintext oracle.

The math on ciphertexts lives in :mod:`primitives.backends.encrypted.training` (SGD steps) and
:mod:`primitives.backends.encrypted.refresh` (the masked refresh round trip); this package holds
what needs no ciphertext: the slot layout (:class:`SlotLayout`), the depth and operation counts of
one step with the parameter selection (:func:`plan_training`), and the same training in float64
numpy (:func:`plain_sgd`), the oracle every encrypted run is compared with.
"""

from .layout import SlotLayout, minibatches
from .plain import MLPWeights, plain_sgd, plain_step, predict
from .plan import LEVELS_PER_STEP, TrainingPlan, plan_training

__all__ = ["SlotLayout", "minibatches", "MLPWeights", "plain_sgd", "plain_step", "predict",
           "TrainingPlan", "plan_training", "LEVELS_PER_STEP"]
