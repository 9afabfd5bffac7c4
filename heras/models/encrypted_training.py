"""Training on CKKS ciphertexts, the Keras way: ``model.fit(enc_x, enc_y, ...)``.

The data owner plans (:func:`training_plan`), makes keys from the plan's parameters, packs and
encrypts the training set (:func:`encrypt_training_data`) and sends the public context and the
tensors. The server calls ``model.fit(enc_x, enc_y, epochs=, batch_size=, learning_rate=,
key_holder=)``: every SGD step runs on ciphertexts (``primitives.backends.encrypted.training``),
the weights become ciphertexts under the data owner's key at the first update, and when their
levels run out a masked refresh goes to ``key_holder`` (a callable on bytes, or a
``heras.deployment.Client``). The data owner then calls ``model.decrypt_weights(context)``: an
ordinary heras model again, for plaintext or encrypted prediction.

Supported: Dense -> Square (or Poly of degree 2, or Dense(activation="square"/poly)) -> Dense,
mean squared error on one-hot targets, plain SGD. Anything else is refused before anything runs.
"""

import time

import keras
import numpy as np

import primitives as P
from primitives.backends.encrypted import refresh as refreshing
from primitives.backends.encrypted.training import EncryptedMLP, PackedTrainingTensor, encrypt_training_set
from primitives.training import MLPWeights, plain_sgd, plan_training
from primitives.training.layout import minibatches

from .. import activations as activation_lookup
from ..layers.core import Activation, Dense
from ..layers.polynomial import Poly, Square

SUPPORTED = ("Input -> Dense(h) -> Square() or Poly([c0, c1, c2]) -> Dense(classes), "
             "loss: mean squared error on one-hot targets")


def _refuse(message):
    raise NotImplementedError(f"{message} Encrypted training supports {SUPPORTED}.")


def _coefficients(activation):
    if isinstance(activation, activation_lookup.Square):
        return (0.0, 0.0, 1.0)
    if isinstance(activation, activation_lookup.Poly):
        coefficients = tuple(activation.coefficients)
        if len(coefficients) == 3 and coefficients[2] != 0:
            return coefficients
        _refuse(f"Poly{list(coefficients)} has no encrypted training form (degree 2 only, with "
                "c2 != 0): use Poly([c0, c1, c2]) or Square().")
    if type(activation) is activation_lookup.HerasActivation:
        return None
    _refuse(f"Activation {activation.name!r} has no encrypted training form: use heras.layers.Square "
            "or Poly([c0, c1, c2]).")


def network_of(model):
    """(dense1, coefficients, dense2) of a trainable model; NotImplementedError names what to use."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    for layer in layers:
        if not isinstance(layer, (Dense, Square, Poly, Activation)):
            _refuse(f"Layer {layer.name!r} ({layer.__class__.__name__}) has no encrypted training form.")
    if len(dense) != 2:
        _refuse(f"The model has {len(dense)} Dense layers; encrypted training needs exactly 2.")
    first, second = dense
    coefficients = [c for c in [_coefficients(first.heras_activation)] if c is not None]
    between = layers[layers.index(first) + 1:layers.index(second)]
    for layer in between:
        if isinstance(layer, Square):
            coefficients.append((0.0, 0.0, 1.0))
        elif isinstance(layer, Poly):
            if layer.trainable_coefficients:
                _refuse("Poly(trainable_coefficients=True) cannot train encrypted: fix its coefficients.")
            coefficients.append(_coefficients(activation_lookup.Poly(layer.initial_coefficients)))
        else:
            coefficients.append(_coefficients(layer.heras_activation))
    coefficients = [c for c in coefficients if c is not None]
    if len(coefficients) != 1 or layers[-1] is not second:
        _refuse("The model needs exactly one polynomial activation between its two Dense layers "
                "and none after the last.")
    if _coefficients(second.heras_activation) is not None:
        _refuse(f"The output layer {second.name!r} has an activation; leave it linear.")
    if not (first.use_bias and second.use_bias):
        _refuse("Both Dense layers need use_bias=True.")
    return first, coefficients[0], second


def initial_weights(model):
    """The model's current weights as float64 :class:`MLPWeights`."""
    first, _, second = network_of(model)
    W1, b1 = (np.asarray(w, np.float64) for w in first.get_weights())
    W2, b2 = (np.asarray(w, np.float64) for w in second.get_weights())
    return MLPWeights(W1, b1, W2, b2)


def check_loss(loss):
    """Refuse every loss but mean squared error, naming it."""
    name = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
    if str(name).lower() not in ("mse", "mean_squared_error", "meansquarederror"):
        _refuse(f"Loss {name!r} has no encrypted training form: use loss='mse' with one-hot targets.")


def training_plan(model, batch_size, *, samples=None, epochs=None, steps_per_refresh=1, parameters=None, **kwargs):
    """The :class:`primitives.training.TrainingPlan` for ``model`` (parameters selected unless given).

    With ``samples`` and ``epochs`` it also states the steps and refreshes of the fit; pass
    ``steps_per_refresh=epochs * ceil(samples / batch_size)`` to ask for a run with no refresh.
    """
    first, coefficients, second = network_of(model)
    total = epochs * len(minibatches(samples, batch_size)) if samples and epochs else None
    return plan_training(first.kernel.shape[0], first.units, second.units, batch_size,
                         steps_per_refresh=steps_per_refresh, total_steps=total, coefficients=coefficients,
                         parameters=parameters, **kwargs)


def encrypt_training_data(model, context, x, y, batch_size):
    """Data owner: one-hot encode ``y`` (integer labels or one-hot rows) and pack (x, y) encrypted.

    Returns (enc_x, enc_y) for ``model.fit``; minibatches are the consecutive runs of
    ``batch_size`` samples, in order (shuffle before encrypting).
    """
    _, _, second = network_of(model)
    y = np.asarray(y)
    onehot = y if y.ndim == 2 else np.eye(second.units)[y.astype(int).reshape(-1)]
    plan = training_plan(model, batch_size, parameters=context.parameters, trial=False)
    return encrypt_training_set(context, x, onehot, plan.layout)


def _key_holder(key_holder):
    if key_holder is None:
        return None
    from ..deployment import Client
    if isinstance(key_holder, Client):
        return refreshing.KeyHolder(key_holder.context)
    if isinstance(key_holder, P.Context):
        return refreshing.KeyHolder(key_holder)
    if not callable(key_holder):
        raise TypeError("Expected `key_holder` to be a callable (request bytes -> response bytes), a "
                        f"heras.deployment.Client or a private Context. Received: {type(key_holder).__name__}")
    return key_holder


def fit(model, x, y, *, epochs=1, batch_size=None, learning_rate=0.1, key_holder=None, verbose=1,
        seed=None, mask_bits=None, weight_bound=None, callbacks=None, **unsupported):
    """Train ``model`` on packed ciphertexts (see the module docstring); returns a History-like dict.

    ``verbose``: 0 silent, 1 the plan and a line per epoch, 2 also a line per step.
    """
    if callbacks:
        raise TypeError("Keras callbacks do not run during encrypted training (the server never sees "
                        "losses or metrics); drop `callbacks`, and read the returned history instead.")
    if unsupported:
        raise TypeError(f"fit on encrypted data does not take {sorted(unsupported)}; it takes epochs, "
                        "batch_size, learning_rate, key_holder, verbose, seed, mask_bits, weight_bound.")
    if not isinstance(x, PackedTrainingTensor) or not isinstance(y, PackedTrainingTensor):
        raise TypeError("Encrypted training needs x and y packed by heras.models.encrypted_training."
                        "encrypt_training_data (the batch-across-slots tensors of inference do not hold "
                        "the training layout).")
    if getattr(model, "loss", None) is not None:
        check_loss(model.loss)
    if batch_size is not None and batch_size != x.minibatch_size:
        raise ValueError(f"The data were packed in minibatches of {x.minibatch_size}; fit received "
                         f"batch_size={batch_size}. Pass the packing's batch size (or none).")
    options = {k: v for k, v in (("mask_bits", mask_bits), ("weight_bound", weight_bound)) if v is not None}
    steps = epochs * len(x.counts)
    plan = training_plan(model, x.minibatch_size, parameters=x.context.parameters, trial=False, **options)
    plan = type(plan)(**{**plan.__dict__, "total_steps": steps})
    holder = _key_holder(key_holder)
    if holder is None and plan.refreshes_needed:
        raise P.DepthExhaustedError(
            f"{steps} SGD steps need {plan.refreshes_needed} refresh(es): the parameters hold "
            f"{plan.steps_per_refresh} step(s) of depth {plan.levels_per_step}. Pass key_holder= (a "
            "heras.deployment.Client, the data owner's Context or a callable on bytes), or parameters "
            f"selected for steps_per_refresh={steps}.")
    if verbose:
        print(plan)
    encrypted = EncryptedMLP(x.context, initial_weights(model), plan.layout, plan.coefficients)
    stats, rng = refreshing.RefreshStats(), np.random.default_rng(seed)
    step_times, start = [], time.perf_counter()
    for epoch in range(epochs):
        for batch in range(len(x.counts)):
            if encrypted.levels_left < encrypted.levels_per_step:
                refreshing.refresh(encrypted, holder, stats, rng, plan.mask_bits, plan.weight_bound)
            tick = time.perf_counter()
            encrypted.step(x, y, batch, learning_rate)
            step_times.append(time.perf_counter() - tick)
            if verbose == 2:
                print(f"  step {len(step_times)}/{steps}: {step_times[-1]:.2f} s, {stats.refreshes} refreshes "
                      f"({stats.bytes_exchanged:,} bytes) so far", flush=True)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: {len(x.counts)} encrypted steps, {stats.refreshes} refreshes "
                  f"so far, {time.perf_counter() - start:.1f} s")
    model.encrypted_weights = encrypted
    history = {"steps": len(step_times), "train_time_s": time.perf_counter() - start,
               "seconds_per_step": float(np.median(step_times)), "step_times": step_times,
               **stats.as_dict(), "refresh_bytes_sent": stats.bytes_sent,
               "refresh_bytes_received": stats.bytes_received, "operations": dict(encrypted.counts),
               "plan": str(plan)}
    model.encrypted_training_history = history
    return history


def decrypt_weights(model, context):
    """Data owner: set the model's weights to the decrypted trained weights; returns the model."""
    encrypted = getattr(model, "encrypted_weights", None)
    if encrypted is None:
        raise RuntimeError("No encrypted weights to decrypt: call model.fit(enc_x, enc_y, ...) first.")
    weights = encrypted.decrypt(context)
    first, _, second = network_of(model)
    first.set_weights([weights.W1.astype("float32"), weights.b1.astype("float32")])
    second.set_weights([weights.W2.astype("float32"), weights.b2.astype("float32")])
    model.encrypted_weights = None
    model.decrypted_weights = weights
    return model


def plaintext_fit(model, x, y, *, epochs, batch_size, learning_rate):
    """The same training in float64 numpy (same initial weights, batches, rate): the oracle."""
    first, coefficients, second = network_of(model)
    y = np.asarray(y)
    onehot = y if y.ndim == 2 else np.eye(second.units)[y.astype(int).reshape(-1)]
    weights, losses = plain_sgd(initial_weights(model), x, onehot, epochs, batch_size, learning_rate, coefficients)
    return weights, losses
