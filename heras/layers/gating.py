"""`PositionGate`: the extension point for layers that scale or switch off feature positions.

A gate multiplies every feature position of its input by a fixed (after training) multiplier
z: 1 keeps the value, 0 switches the position off, anything between scales it. Such a layer
costs nothing on ciphertexts: ``prepare_encryption`` folds the multipliers into a neighbouring
linear layer (:mod:`heras.models.gates`), after which the gate is the identity, and positions
whose multiplier is 0 disappear from the encrypted graph (:mod:`heras.models.pruning`): no
activation is computed for them and the linear layer before them computes only the others.

To write a gate (e.g. an L0 sparsifier, a learnt channel mask), subclass :class:`PositionGate`
and implement two methods:

- ``gate_values()``: the multipliers at inference, a numpy array broadcastable to the
  per-sample input shape (per position, per channel, ...);
- ``call_training(inputs, training)``: the layer on TensorFlow tensors (sampling, penalties
  through ``add_loss``, ...). The base class runs it for Keras' fit/predict/evaluate.

Any other layer can take part by defining ``encryption_gates()`` (the multipliers, or None)
and by acting as the identity on non-TensorFlow inputs once ``gates_folded`` is set.
"""

import keras
import numpy as np

import primitives as P
from .base import EncryptableLayer, is_framework


class PositionGate(EncryptableLayer, keras.layers.Layer):
    """Base class of gate layers: z * x per position, folded away by ``prepare_encryption``.

    On TensorFlow tensors it runs ``call_training``. On numpy arrays, bounds and ciphertexts it
    multiplies by ``gate_values()`` until the model is prepared, and is the identity afterwards
    (the multipliers then live in the neighbouring linear layer's weights).
    """

    #: Set by ``prepare_encryption`` once the multipliers are folded into a linear layer.
    gates_folded = False

    @property
    def elementwise(self):
        """Once folded the gate is the identity, which commutes with taking features."""
        return self.gates_folded

    def gate_values(self):
        """The multipliers at inference, broadcastable to the per-sample input shape."""
        raise NotImplementedError(f"{self.__class__.__name__} must implement gate_values().")

    def call_training(self, inputs, training=None):
        """The layer on TensorFlow tensors (training and Keras inference)."""
        raise NotImplementedError(f"{self.__class__.__name__} must implement call_training().")

    def encryption_gates(self):
        """The hook ``prepare_encryption`` reads: the multipliers as float64."""
        return np.asarray(self.gate_values(), dtype=np.float64)

    def call(self, inputs, training=None):
        if is_framework(inputs):
            return self.call_training(inputs, training=training)
        if self.gates_folded:
            return inputs
        if P.is_encrypted(inputs):
            raise RuntimeError(f"{self.name}: gates run on ciphertexts only once folded; call "
                               "model.prepare_encryption(...) first.")
        return P.multiply(inputs, self.encryption_gates())

    def compute_output_shape(self, input_shape):
        return input_shape

    def kept_fraction(self, input_shape):
        """Fraction of the input's positions whose multiplier is not 0."""
        z = np.broadcast_to(self.encryption_gates(), tuple(input_shape[1:]))
        return float(np.count_nonzero(z)) / max(z.size, 1)
