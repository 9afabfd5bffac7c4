"""`L0Gate`: hard-concrete gates that learn which activations a network can do without.

Louizos, Welling and Kingma, "Learning Sparse Neural Networks through L0 Regularization"
(ICLR 2018). Each gated position j has a trainable log_alpha_j. In training the gate is a
stretched, clipped concrete sample (u ~ U(0, 1)):

    s = sigmoid((log u - log(1 - u) + log_alpha) / beta),   z = clip(s (zeta - gamma) + gamma, 0, 1)

with beta = 2/3, gamma = -0.1, zeta = 1.1, and the layer adds the expected number of non-zero
gates, lambda * sum_j sigmoid(log_alpha_j - beta log(-gamma / zeta)), to the loss (Keras'
``add_loss``; each per-channel gate counts the positions it switches). At inference the gate
is deterministic, z = clip(sigmoid(log_alpha) (zeta - gamma) + gamma, 0, 1): exactly 0 for
log_alpha <= -log(11), exactly 1 for log_alpha >= log(11).

Put the gate right before a Square (or after it): every activation costs one
ciphertext-ciphertext product per sample, and ``prepare_encryption`` folds the gates into
the next Dense layer and removes the positions whose gate is 0 from the encrypted graph
(heras' :class:`~heras.layers.PositionGate` extension point). The penalty follows
:class:`~applications.sparsifier.schedule.L0Schedule` (no penalty for ``warmup_epochs``, then
a linear ramp over ``ramp_epochs``), which heras' ``fit`` adds by itself.
"""

import math

import keras
import numpy as np

from heras.layers import PositionGate, register_layer

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
DEFAULT_LAMBDA = 2e-4          # per activation, against the batch-mean cross-entropy
DEFAULT_INITIAL_LOG_ALPHA = 3.0  # gates start open (z = 1 at inference)
DEFAULT_GATE_SPEED = 10.0     # log_alpha = speed * variable: Adam moves gates this much faster
DEFAULT_WARMUP_EPOCHS = 1.0
DEFAULT_RAMP_EPOCHS = 2.0
_EPSILON = 1e-6


@register_layer(package="sparsifier")
class L0Gate(PositionGate):
    """Hard-concrete L0 gates, one per feature position (or per channel); see the module docstring.

    Args:
        l0_lambda: weight of the expected L0 penalty per gated activation (default 2e-4).
        per_channel: one gate per channel (last axis) instead of one per position.
        initial_log_alpha: starting log_alpha (3: every gate open).
        warmup_epochs, ramp_epochs: the penalty schedule (see :class:`L0Schedule`).
        gate_speed: log_alpha = gate_speed * its variable, so that Adam (whose steps do not
            depend on the gradient's scale) moves the gates ``gate_speed`` times faster than the
            weights: at the weights' 3e-3 a gate would need ~2,000 steps to close.

    Example:
        >>> model = Sequential([Input((28, 28, 1)), Conv2D(16, 5, strides=2, padding="same"),
        ...                     L0Gate(), Square(), Flatten(), Dense(10)])
    """

    def __init__(self, l0_lambda=DEFAULT_LAMBDA, per_channel=False, initial_log_alpha=DEFAULT_INITIAL_LOG_ALPHA,
                 warmup_epochs=DEFAULT_WARMUP_EPOCHS, ramp_epochs=DEFAULT_RAMP_EPOCHS,
                 gate_speed=DEFAULT_GATE_SPEED, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(l0_lambda, (int, float)) and l0_lambda >= 0):
            raise ValueError(f"Expected `l0_lambda` to be a number >= 0. Received: l0_lambda={l0_lambda!r}")
        if not (isinstance(gate_speed, (int, float)) and gate_speed > 0):
            raise ValueError(f"Expected `gate_speed` to be a number > 0. Received: gate_speed={gate_speed!r}")
        self.gate_speed = float(gate_speed)
        for name, value in (("warmup_epochs", warmup_epochs), ("ramp_epochs", ramp_epochs)):
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"Expected `{name}` to be a number >= 0. Received: {name}={value!r}")
        self.l0_lambda, self.per_channel = float(l0_lambda), bool(per_channel)
        self.initial_log_alpha = float(initial_log_alpha)
        self.seeds = keras.random.SeedGenerator()
        self.warmup_epochs, self.ramp_epochs = float(warmup_epochs), float(ramp_epochs)

    def build(self, input_shape):
        features = tuple(input_shape[1:])
        if any(d is None for d in features):
            raise ValueError(f"{self.name}: L0Gate needs a fixed per-sample shape. Received {input_shape}.")
        shape = features[-1:] if self.per_channel else features
        self.positions_per_gate = math.prod(features) // math.prod(shape)
        self.scaled_log_alpha = self.add_weight(
            name="scaled_log_alpha", shape=shape,
            initializer=keras.initializers.Constant(self.initial_log_alpha / self.gate_speed))
        # the schedule's factor on the penalty (L0Schedule sets it per batch; 1 without it)
        self.penalty_scale = self.add_weight(name="penalty_scale", shape=(), trainable=False,
                                             initializer=keras.initializers.Constant(1.0))

    @property
    def log_alpha(self):
        """The gates' log_alpha (a tensor): gate_speed * the trained variable."""
        return self.scaled_log_alpha * self.gate_speed

    def call_training(self, inputs, training=None):
        ops = keras.ops
        if not training:
            return inputs * _deterministic(ops, self.log_alpha)
        u = keras.random.uniform(ops.shape(inputs), _EPSILON, 1.0 - _EPSILON, seed=self.seeds)
        s = ops.sigmoid((ops.log(u) - ops.log(1.0 - u) + self.log_alpha) / BETA)
        z = ops.clip(s * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)
        if self.l0_lambda:
            self.add_loss(self.l0_lambda * self.penalty_scale * self.expected_active(ops))
        return inputs * z

    def expected_active(self, ops=keras.ops):
        """Expected number of gated activations left on (the differentiable L0 norm)."""
        probability = ops.sigmoid(self.log_alpha - BETA * math.log(-GAMMA / ZETA))
        return ops.sum(probability) * self.positions_per_gate

    def gate_values(self):
        return _deterministic(np, np.asarray(self.scaled_log_alpha, dtype=np.float64) * self.gate_speed)

    def training_callbacks(self):
        """heras' ``fit`` adds these: the penalty's warm-up and ramp."""
        from .schedule import L0Schedule
        return [L0Schedule()]

    def get_config(self):
        return {**super().get_config(), "l0_lambda": self.l0_lambda, "per_channel": self.per_channel,
                "initial_log_alpha": self.initial_log_alpha, "warmup_epochs": self.warmup_epochs,
                "ramp_epochs": self.ramp_epochs, "gate_speed": self.gate_speed}

    def __repr__(self):
        kind = "per channel" if self.per_channel else "per position"
        return f"<sparsifier L0Gate {kind}, lambda={self.l0_lambda:g}>"


def _deterministic(ops, log_alpha):
    """Inference gates: clip(sigmoid(log_alpha) (zeta - gamma) + gamma, 0, 1)."""
    if ops is np:
        return np.clip(1.0 / (1.0 + np.exp(-log_alpha)) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)
    return ops.clip(ops.sigmoid(log_alpha) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)
