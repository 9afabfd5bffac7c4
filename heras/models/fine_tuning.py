"""Quantisation-aware fine-tuning: train a fitted model with BFV's rounding in the loop.

``prepare_encryption("bfv")`` rounds inputs to ``input_bits`` and every Dense/Conv2D kernel to
``weight_bits`` after training (post-training rounding); at few bits the rounded model loses
accuracy, yet few bits are what keep the proven bound, hence the number of CRT primes and the
encrypted latency, small. :func:`fine_tune` trains a few more epochs on the model as it will
be discretised:

- inputs are rounded exactly as the plan will round them (``round(x * input_scale)``, clipped,
  then divided back), once, before training;
- every Dense/Conv2D kernel W is used as ``round(W * s) / s`` in the forward pass, with the
  scale s = (2^(weight_bits-1) - 1) / max|W| that discretisation will use (a power of two
  below it for functional models), and the gradient passes straight through the rounding
  (W + stop_gradient(round(W * s) / s - W)); the float weights keep learning.

The hook is generic: every heras layer's ``weight_for`` passes its trained variables through
``layer.training_weight_transform`` when set; fine-tuning sets it, fits with Keras' ``fit``
(Adam, cosine decay, optional augmentation layers) and removes it. Afterwards the model is
discretised as always, so BFV stays bit-for-bit exact against ``predict_discretized``; the
fine-tuned float kernels round to integers whose real values the training saw. Biases
(rounded far more finely, at the input scale times the weight scale), polynomial
coefficients and folded BatchNormalization factors are not rounded during fine-tuning.
"""

import math

import keras
import numpy as np

from . import training as heras_training
from .preparation import _input_range, _power_of_two_below, quantize_inputs

FINE_TUNE_KEYS = ("epochs", "learning_rate", "batch_size", "augmentation", "seed", "verbose")
DEFAULT_EPOCHS = 2
DEFAULT_LEARNING_RATE = 3e-4


class RoundKernel:
    """``training_weight_transform`` rounding a kernel to ``weight_bits`` with a straight-through
    gradient; other weights (bias) pass unchanged."""

    def __init__(self, weight_bits, power_of_two=False):
        self.weight_bits, self.power_of_two = int(weight_bits), bool(power_of_two)

    def __call__(self, name, variable):
        if name != "kernel":
            return variable
        ops = keras.ops
        largest = ops.maximum(ops.max(ops.abs(variable)), 1e-12)
        scale = ops.stop_gradient((2 ** (self.weight_bits - 1) - 1) / largest)
        if self.power_of_two:  # as preparation._power_of_two_below
            scale = ops.stop_gradient(2.0 ** ops.floor(ops.log2(scale)))
        rounded = ops.round(variable * scale) / scale
        return variable + ops.stop_gradient(rounded - variable)

    def __repr__(self):
        return f"RoundKernel({self.weight_bits} bits{', power of two' if self.power_of_two else ''})"


def quantised_inputs(model, x, input_bits=8, calibration=None):
    """``x`` as the BFV plan will read it, in real units: round(x * input_scale) / input_scale,
    with the input scale :func:`~heras.models.preparation.prepare` derives from ``calibration``
    (default: ``x`` itself)."""
    input_max, signed = _input_range(x if calibration is None else calibration)
    levels = 2 ** (input_bits - 1) - 1 if signed else 2 ** input_bits - 1
    input_scale = levels / input_max
    if not isinstance(model, keras.Sequential):
        input_scale = _power_of_two_below(input_scale)
    return (quantize_inputs(x, "bfv", input_scale, levels) / input_scale).astype(np.float32)


def linear_layers(model):
    """The layers whose kernels BFV discretisation rounds to ``weight_bits``."""
    return [layer for layer in model.layers if layer.__class__.__name__ in ("Dense", "Conv2D")]


def fine_tune(model, x, y, input_bits=8, weight_bits=8, calibration=None, epochs=DEFAULT_EPOCHS,
              learning_rate=DEFAULT_LEARNING_RATE, batch_size=128, augmentation=(), seed=0, verbose=0,
              loss=None):
    """Fine-tune a fitted ``model`` with inputs and kernels rounded as BFV will round them.

    Call it before ``prepare_encryption("bfv", input_bits=..., weight_bits=...)`` with the same
    bits and calibration (or pass ``fine_tune={"x": ..., "y": ...}`` to ``prepare_encryption``,
    which does both). The model is recompiled (Adam at ``learning_rate`` with gradients clipped
    to norm 1, cosine decay to 0 over the run) and stays compiled so.

    Args:
        model: a fitted heras model.
        x, y: training inputs (real units, as for ``fit``) and integer labels.
        input_bits, weight_bits: the BFV quantisation ``prepare_encryption`` will use.
        calibration: the inputs whose range sets the input scale (default ``x``), as for
            ``prepare_encryption``.
        epochs, learning_rate, batch_size: the fine-tuning run.
        augmentation: Keras ``Random*`` layers or their specs, applied to training batches
            (see :func:`heras.models.training.augmentation_layers`).
        seed: shuffling and augmentation seed.
        verbose: Keras verbosity.
        loss: default sparse categorical cross-entropy on logits.

    Returns:
        The Keras history of the fine-tuning run.

    Example:
        >>> fine_tune(model, x_train, y_train, input_bits=4, weight_bits=5, epochs=2)  # doctest: +SKIP
        >>> model.prepare_encryption("bfv", calibration=x_train, input_bits=4, weight_bits=5)  # doctest: +SKIP
    """
    if not model.built or not model.inputs:
        raise RuntimeError("fine_tune needs a fitted model: build and fit it (model.fit(...)) first.")
    for key, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("input_bits", input_bits, 1),
                            ("weight_bits", weight_bits, 2)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"Expected `{key}` to be an integer >= {low}. Received: {key}={value!r}")
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        raise ValueError(f"Expected `learning_rate` to be a positive number. Received: learning_rate={learning_rate!r}")
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"Expected `x` and `y` to hold the same non-zero number of samples. "
                         f"Received: {len(x)} and {len(y)}.")
    layers = linear_layers(model)
    if not layers:
        raise ValueError("fine_tune rounds Dense/Conv2D kernels; this model has none.")
    x_rounded = quantised_inputs(model, x, input_bits, calibration)
    steps = math.ceil(len(x) / batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(float(learning_rate), max(1, epochs * steps))
    optimizer = keras.optimizers.Adam(schedule, clipnorm=heras_training.DEFAULT_CLIPNORM)
    transform = RoundKernel(weight_bits, power_of_two=not isinstance(model, keras.Sequential))
    for layer in layers:
        layer.training_weight_transform = transform
    _forget_traced_functions(model)
    try:
        model.compile(optimizer=optimizer, loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        augment = heras_training.augmentation_layers(augmentation, seed=seed)
        if augment:
            data = heras_training.augmented_dataset(x_rounded, y, augment, batch_size, seed=seed)
            return model.fit(data, epochs=epochs, verbose=verbose)
        return model.fit(x_rounded, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    finally:
        for layer in layers:
            layer.training_weight_transform = None
        _forget_traced_functions(model)  # traced with the rounding: Keras must trace predict anew


def _forget_traced_functions(model):
    for name in ("train_function", "test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)
