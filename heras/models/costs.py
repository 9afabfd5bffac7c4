"""Encryption costs of a model: activations and multiplicative depth, layer by layer.

Activations count what the encrypted forward pass computes: features left out of a pruned
model (:mod:`heras.models.pruning`) cost nothing.
"""

import math

import keras

from ..layers.base import EncryptableLayer
from . import pruning

ALTERNATIVES = {
    "MaxPooling2D": "heras.layers.AveragePooling2D or SumPooling2D",
    "ReLU": "heras.layers.Square or heras.layers.Poly",
    "Softmax": "nothing inside the network: apply softmax after decryption",
}


def check_encryptable(layers):
    """Raise NotImplementedError naming the first layer with no encrypted form and its alternative."""
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue  # functional models list their inputs as layers
        activation = getattr(layer, "heras_activation", None)
        if not isinstance(layer, EncryptableLayer) or (activation is not None and not activation.encryptable):
            kind = layer.__class__.__name__
            if activation is not None and not activation.encryptable:
                kind = f"activation {activation.name!r} in {kind}"
            alternative = ALTERNATIVES.get(layer.__class__.__name__,
                                           "heras.layers.Square or heras.layers.Poly (activations), "
                                           "AveragePooling2D/SumPooling2D (pooling)")
            raise NotImplementedError(
                f"Layer {layer.name!r} ({kind}) has no encrypted form; use {alternative} instead, "
                "and retrain.")


def encryption_costs(model):
    """Return one dict per layer with shapes, parameters, activations and depths so far (the
    longest path to the layer's output, for functional models)."""
    if not isinstance(model, keras.Sequential):
        return _graph_costs(model)
    rows, bfv, ckks = [], 0, 0
    shape = tuple(model.inputs[0].shape) if model.inputs else None
    computed = pruning.computed_features(model) if model.inputs else [None] * len(model.layers)
    for layer, features in zip(model.layers, computed):
        out_shape = tuple(layer.compute_output_shape(shape)) if shape is not None else None
        if isinstance(layer, EncryptableLayer):
            cost = layer.encryption_cost(shape)
            bfv, ckks = bfv + cost["bfv_depth"], ckks + cost["ckks_depth"]
            activations = cost["activations"]
            if features is not None and activations:  # pruned: only the computed features count
                activations = activations * features.size // math.prod(out_shape[1:])
        else:
            activations = None
        rows.append({"layer": layer.name, "type": layer.__class__.__name__, "output_shape": out_shape,
                     "parameters": layer.count_params(), "activations": activations,
                     "bfv_depth": bfv, "ckks_depth": ckks})
        shape = out_shape
    return rows


def _graph_costs(model):
    from .preparation import path_depths
    (bfv, bfv_total), (ckks, ckks_total) = path_depths(model, "bfv"), path_depths(model, "ckks")
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        input_shape = layer.input.shape if not isinstance(layer.input, list) else layer.input[0].shape
        activations = layer.encryption_cost(tuple(input_shape))["activations"] \
            if isinstance(layer, EncryptableLayer) else None
        rows.append({"layer": layer.name, "type": layer.__class__.__name__,
                     "output_shape": tuple(layer.output.shape), "parameters": layer.count_params(),
                     "activations": activations, "bfv_depth": bfv.get(id(layer), 0),
                     "ckks_depth": ckks.get(id(layer), 0)})
    if rows:  # the totals line reads the last row: the longest path
        rows[-1] = {**rows[-1], "bfv_depth": max(bfv_total, rows[-1]["bfv_depth"]),
                    "ckks_depth": max(ckks_total, rows[-1]["ckks_depth"])}
    return rows


def format_costs(rows):
    """Render the rows of :func:`encryption_costs` with totals."""
    header = f"{'Layer (type)':<32}{'Output shape':<20}{'Params':>9}{'Activations':>13}{'Depth BFV/CKKS':>16}"
    lines = ["Encryption cost", header, "-" * len(header)]
    for row in rows:
        activations = "n/a" if row["activations"] is None else str(row["activations"])
        lines.append(f"{row['layer'] + ' (' + row['type'] + ')':<32}{str(row['output_shape']):<20}"
                     f"{row['parameters']:>9}{activations:>13}{row['bfv_depth']:>9}/{row['ckks_depth']}")
    total = sum(r["activations"] or 0 for r in rows)
    depth = (rows[-1]["bfv_depth"], rows[-1]["ckks_depth"]) if rows else (0, 0)
    lines += ["-" * len(header),
              f"Total activations (ciphertext multiplications per sample): {total}",
              f"Multiplicative depth: BFV {depth[0]} (ciphertext products), CKKS {depth[1]} (rescalings)"]
    if any(r["activations"] is None for r in rows):
        lines.append("Some layers have no encrypted form (n/a): the model cannot run encrypted.")
    return "\n".join(lines)
