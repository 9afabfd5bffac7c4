"""Turn a config's ``model`` and ``training`` sections into a trained heras model.

Layers are written as in Keras' ``get_config``: ``{class_name: Dense, config: {units: 30}}``,
or in short as ``{Dense: {units: 30}}`` or just ``Square``. Only heras layers are accepted:
they are the ones with an encrypted form.
"""

import math
import warnings

import keras
import numpy as np

import applications  # noqa: F401  (registers the applications' layers, e.g. L0Gate)
import heras
from heras.models import training as heras_training
from .config import ConfigError, resolve


def layer_from_spec(spec, index):
    """Build the heras layer described by ``spec`` (the ``index``-th entry of model.layers)."""
    where = f"model.layers[{index}]"
    if isinstance(spec, str):
        class_name, options = spec, {}
    elif isinstance(spec, dict) and "class_name" in spec:
        unknown = sorted(set(spec) - {"class_name", "config"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; a layer is {{class_name: ..., config: {{...}}}}.")
        class_name, options = spec["class_name"], spec.get("config") or {}
    elif isinstance(spec, dict) and len(spec) == 1:
        (class_name, options), = spec.items()
        options = options or {}
    else:
        raise ConfigError(f"{where}: expected a layer name (Square), {{Dense: {{units: 30}}}} or "
                          f"{{class_name: Dense, config: {{units: 30}}}}. Found {spec!r}.")
    cls = heras.layers.get_layer_class(str(class_name))  # heras' layers, then the applications' (L0Gate)
    if cls is None or cls is heras.layers.PositionGate:
        known = sorted(name for name in heras.layers.__all__
                       if heras.layers.get_layer_class(name) not in (None, heras.layers.PositionGate))
        known += heras.layers.registry.registered_names()
        raise ConfigError(f"{where}: {class_name!r} is not a heras layer; choose one of {known} "
                          "(ReLU/MaxPooling have no encrypted form: use Square/Poly and AveragePooling2D).")
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: the options of {class_name} must be a mapping. Found {options!r}.")
    try:
        return cls.from_config(dict(options))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where} ({class_name}): invalid options {options!r}: {err}") from err


def build_model(config, input_shape):
    """A heras Sequential for ``config.model``: the listed layers, or the saved model."""
    if config.model.load:
        model = heras.models.load_model(resolve(config, config.model.load))
        expected = tuple(model.inputs[0].shape[1:])
        if expected != tuple(input_shape):
            raise ConfigError(f"model.load: the saved model expects inputs of shape {expected}; the "
                              f"dataset {config.dataset.name!r} gives {tuple(input_shape)}.")
        return model
    layers = [layer_from_spec(spec, i) for i, spec in enumerate(config.model.layers)]
    try:
        model = heras.models.Sequential([heras.layers.Input(tuple(input_shape))] + layers, name=_keras_name(config))
    except ValueError as err:  # Keras: a layer does not fit the shape it receives
        raise ConfigError(f"model.layers do not fit inputs of shape {tuple(input_shape)}: {err}") from err
    output_shape = tuple(model.outputs[0].shape[1:])
    if len(output_shape) != 1:
        raise ConfigError(f"model.layers: the model maps inputs of shape {tuple(input_shape)} to {output_shape} "
                          "per sample; a classifier must output one score per class. Put a Flatten first "
                          "(Dense acts on the last axis only).")
    return model


def _keras_name(config):
    return "".join(c if c.isalnum() or c == "_" else "_" for c in config.model.name) or "model"


def make_optimizer(training, steps_per_epoch):
    """The configured optimizer; None leaves the choice to heras' default."""
    spec = training.optimizer
    if spec is None and training.learning_rate is None and not training.cosine_decay:
        return None
    if spec is None:
        spec = "adam"
    try:
        optimizer = keras.optimizers.get(spec)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"training.optimizer: {spec!r} is not a Keras optimizer ({err}). Use a name "
                          "like adam, or {class_name: Adam, config: {learning_rate: 0.003, clipnorm: 1.0}}.") from err
    rate = training.learning_rate
    if rate is None:
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    if training.cosine_decay:
        rate = keras.optimizers.schedules.CosineDecay(rate, max(1, training.epochs * steps_per_epoch))
    if training.learning_rate is not None or training.cosine_decay:
        config = optimizer.get_config()
        config["learning_rate"] = rate
        optimizer = optimizer.__class__.from_config(config)
    warn_if_average_is_short(optimizer, training.epochs * steps_per_epoch)
    return optimizer


def warn_if_average_is_short(optimizer, steps):
    """Warn when weight averaging (``use_ema``) cannot forget the initial weights in ``steps``.

    Keras' EMA starts from the initial weights and keeps momentum^steps of them: with 0.999
    and the 157 steps of one epoch on 20,000 images that is 85%, a model at ~60% accuracy.
    A recipe tuned for 50 epochs and shortened with ``--set training.epochs=1`` must say so.
    """
    if not getattr(optimizer, "use_ema", False) or steps <= 0:
        return
    momentum = float(optimizer.ema_momentum)
    left = momentum ** steps
    if left > 0.01:
        warnings.warn(f"training.optimizer: use_ema with ema_momentum {momentum:g} keeps {100 * left:.0f}% of the "
                      f"initial weights after this run's {steps:,} steps, so the trained model will be poor. "
                      f"Train at least {math.ceil(math.log(0.01) / math.log(momentum)):,} steps (more epochs), "
                      "lower ema_momentum, or set use_ema: false for short runs.", UserWarning, stacklevel=2)


def train(model, config, x_train, y_train, verbose):
    """Compile and fit ``model`` as ``config.training`` says; returns the Keras history (or None)."""
    training = config.training
    if training.epochs == 0:
        return None
    fit_samples = len(x_train) * (1 - training.validation_split)
    optimizer = make_optimizer(training, math.ceil(fit_samples / training.batch_size))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if optimizer is None:
        model.compile(loss=loss, metrics=["accuracy"])
    else:
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    if not training.augmentation:
        return model.fit(x_train, y_train, epochs=training.epochs, batch_size=training.batch_size,
                         validation_split=training.validation_split, verbose=verbose)
    try:
        layers = heras_training.augmentation_layers(training.augmentation, seed=training.seed)
    except ValueError as err:
        raise ConfigError(f"training.{err}") from err
    fit_count = len(x_train) - int(len(x_train) * training.validation_split)  # Keras' split: the last part
    validation = (x_train[fit_count:], y_train[fit_count:]) if fit_count < len(x_train) else None
    batches = heras_training.augmented_dataset(x_train[:fit_count], y_train[:fit_count], layers,
                                                      training.batch_size, seed=training.seed)
    return model.fit(batches, epochs=training.epochs, validation_data=validation, verbose=verbose)


def plaintext_accuracy(model, x, y):
    """Accuracy of the float model (argmax of the logits)."""
    logits = model.predict(x, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y).reshape(-1)))
