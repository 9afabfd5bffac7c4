"""Which features the encrypted forward pass computes: positions nobody reads are left out.

A hidden feature whose row in the next Dense kernel is all zeros (a gate switched it off and
was folded there, :mod:`heras.models.gates`, or its weights rounded to 0) contributes nothing:
computing it, squaring it and multiplying it by zeros is wasted work. Going backwards through a
Sequential model, :func:`computed_features` finds the features each layer's consumers read:

- a Dense on flat inputs reads the inputs whose kernel row is non-zero in a read output column;
- Flatten, Reshape and element-wise layers (Square, Poly, Dropout, folded gates) read the same
  positions they produce (flat C-order indices do not change under reshaping);
- any other layer reads everything.

A Dense or Conv2D then computes only the features read from it (``P.matmul`` / ``P.conv2d``
with ``output_features``: the coefficient kernel and SEAL's loop see only those rows), and the
element-wise layers after it work on that compact, flat tensor; the Dense that consumes it
uses the matching kernel rows. Results are the same integers (BFV: every dropped term is a
product by 0) and the CKKS error bound holds (the dropped terms carry weight 0 in it).
"""

import numpy as np

from ..layers.base import LinearWithActivation
from ..layers.core import Dense, Flatten, Reshape
from .gates import has_gates, input_shapes

_NUMPY = np.zeros(0)  # weight_for(name, _NUMPY): the weights ciphertexts would use


def passthrough(layer):
    """Layers that produce exactly the positions they receive (compact tensors pass through)."""
    return isinstance(layer, (Flatten, Reshape)) or bool(getattr(layer, "elementwise", False)) or has_gates(layer)


def computed_features(model):
    """Per layer of a Sequential model: the flat indices of its output features that are
    computed (a sorted int64 array), or None for all of them."""
    layers, shapes = model.layers, input_shapes(model)
    demand, needed = None, [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        needed[i] = demand
        if isinstance(layer, Dense) and len(shapes[i]) == 1:
            kernel = np.asarray(layer.weight_for("kernel", _NUMPY))
            read = kernel if demand is None else kernel[:, demand]
            rows = np.flatnonzero(np.any(read != 0, axis=1))
            if rows.size == 0:
                rows = np.zeros(1, dtype=np.int64)  # nothing is read: keep one input, not an empty tensor
            demand = None if rows.size == shapes[i][0] else rows.astype(np.int64)
        elif has_gates(layer):
            demand = _gate_demand(layer, shapes[i], demand)
        elif not passthrough(layer):
            demand = None
    computed, positions = [], None
    for i, layer in enumerate(layers):
        if isinstance(layer, LinearWithActivation):
            positions = needed[i]
        elif not passthrough(layer):
            positions = None
        computed.append(positions)
    return computed


def _gate_demand(gate, shape, demand):
    """A gate's output at a position whose multiplier is 0 is 0 whatever its input: not read."""
    z = np.broadcast_to(gate.encryption_gates(), shape).reshape(-1)
    open_positions = np.flatnonzero(z != 0)
    if demand is not None:
        open_positions = np.intersect1d(open_positions, demand)
    if open_positions.size == 0:
        open_positions = np.zeros(1, dtype=np.int64)
    return None if open_positions.size == z.size else open_positions.astype(np.int64)


def computed_counts(model):
    """Per layer: how many of its output features are computed per sample."""
    counts = []
    shape = tuple(model.inputs[0].shape)
    for layer, features in zip(model.layers, computed_features(model)):
        shape = tuple(layer.compute_output_shape(shape))
        counts.append(int(np.prod(shape[1:])) if features is None else int(features.size))
    return counts
