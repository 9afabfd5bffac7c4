"""`L0Schedule`: the L0 penalty's warm-up, so that gated networks first learn, then prune.

Pruning from the first step switches off positions before the network knows which ones
matter. The schedule keeps each :class:`~applications.sparsifier.L0Gate`'s penalty at 0 for
its ``warmup_epochs``, then ramps it linearly to the full lambda over ``ramp_epochs`` (set per
batch from the epoch and step Keras reports). heras' ``fit`` adds it by itself (a gate's
``training_callbacks``); pass one explicitly to fit a plain ``keras.Model``.
"""

import keras

from .layers import L0Gate


class L0Schedule(keras.callbacks.Callback):
    """Set every L0Gate's ``penalty_scale`` per batch: 0 in warm-up, then a ramp to 1."""

    def on_train_begin(self, logs=None):
        self.steps = max(int(self.params.get("steps") or 1), 1)
        self.epoch = 0
        self.gates = [layer for layer in _all_layers(self.model) if isinstance(layer, L0Gate)]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        progress = self.epoch + batch / self.steps
        for gate in self.gates:
            gate.penalty_scale.assign(scale_at(progress, gate.warmup_epochs, gate.ramp_epochs))


def scale_at(epochs, warmup_epochs, ramp_epochs):
    """The penalty factor after ``epochs`` (fractional) of training."""
    if epochs < warmup_epochs:
        return 0.0
    if ramp_epochs <= 0:
        return 1.0
    return min(1.0, (epochs - warmup_epochs) / ramp_epochs)


def _all_layers(model):
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers
