"""`extract`: a sub-model of a trained model, from its input to one layer's output, ready to prepare.

``prepare_encryption`` takes models with one input and one output. A trained model often has
more outputs than the part that should run encrypted: a VAE encoder ends in a mean and a
log-variance head, and only the mean is served; a classifier may expose hidden features.
``extract(model, "z_mean")`` returns a new heras model computing exactly that layer's output:
a :class:`~heras.models.Sequential` when the path from the input is a chain of single-input
layers (the form whose BFV layers stream and share CRT primes between processes), a
functional :class:`~heras.models.Model` otherwise (e.g. a residual ``Add`` on the way).

The layers are copies (same configuration, same trained weights): preparing the extracted
model for BFV or CKKS never touches the original, and the original keeps training unchanged.
"""

import keras

from .functional import Model
from .sequential import Sequential


def extract(model, output, name=None):
    """The sub-model of ``model`` from its input to the output of the layer ``output``.

    Args:
        model: a built heras (or Keras) model with one input; its layers on the path must be
            heras layers for the result to run encrypted.
        output: the layer (or its name) whose output the sub-model returns.
        name: the sub-model's name (default ``"<model>_<layer>"``).

    Returns:
        A new, unprepared heras Sequential (a chain) or Model (a graph) with copies of the
        layers and their weights.

    Raises:
        ValueError: ``output`` names no layer of ``model``, the model has several inputs, or
            the layer's output does not depend on the model's input.

    Example:
        >>> encoder = extract(vae_encoder, "z_mean")          # drop the log-variance head
        >>> encoder.prepare_encryption("bfv", calibration=x_train)
    """
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError("Expected a built model with inputs (a functional or Sequential model after "
                         "fit, or built on an Input). Build or fit it first.")
    if len(model.inputs) != 1:
        raise ValueError(f"extract handles models with one input; {model.name!r} has {len(model.inputs)}.")
    layer = _find_layer(model, output)
    name = name or f"{model.name}_{layer.name}"
    chain = _chain(model, layer)
    input_shape = tuple(model.inputs[0].shape[1:])
    if chain is not None:
        copies = [_copy(original) for original in chain]
        sub = Sequential([keras.Input(input_shape)] + copies, name=name)
    else:
        graph = keras.Model(model.inputs, layer.output)  # the sub-graph, sharing the layers
        copies = {}

        def copy_and_call(original):
            def call(*args, **kwargs):
                clone = copies.setdefault(id(original), (original, _copy(original)))[1]
                return clone(*args, **kwargs)
            return call
        inputs = keras.Input(input_shape)
        outputs = graph._run_through_graph(inputs, operation_fn=copy_and_call)
        sub = Model(inputs, outputs, name=name)
        chain = [original for original, _ in copies.values()]
        copies = [clone for _, clone in copies.values()]
    for original, clone in zip(chain, copies):
        clone.set_weights(original.get_weights())
    return sub


def _find_layer(model, output):
    if isinstance(output, str):
        for layer in model.layers:
            if layer.name == output:
                return layer
        names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        raise ValueError(f"Model {model.name!r} has no layer named {output!r}; its layers are {names}.")
    if output not in model.layers:
        raise ValueError(f"Layer {getattr(output, 'name', output)!r} is not a layer of model {model.name!r}.")
    return output


def _chain(model, layer):
    """The layers from the input to ``layer`` when each has one input tensor (else None)."""
    if isinstance(model, keras.Sequential):
        return model.layers[:model.layers.index(layer) + 1]
    chain, current = [], layer
    source = model.inputs[0]
    while True:
        nodes = current._inbound_nodes
        if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
            return None  # a merge, or a layer called more than once: keep the graph
        chain.append(current)
        tensor = nodes[0].input_tensors[0]
        if tensor is source:
            return chain[::-1]
        parent = tensor._keras_history[0]
        if isinstance(parent, keras.layers.InputLayer) or parent not in model.layers:
            raise ValueError(f"The output of {layer.name!r} does not depend on the input of {model.name!r}.")
        current = parent


def _copy(layer):
    """A fresh layer of the same class and configuration (weights set by the caller)."""
    return layer.__class__.from_config(layer.get_config())
