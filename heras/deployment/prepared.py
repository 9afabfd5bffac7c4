"""Hand a prepared model from the developer to the server: save it with its encryption plan.

A prepared folder holds ``model.keras`` (architecture and trained weights, Keras format),
``plan.json`` (scheme, parameters, scales, the integer weights and polynomial coefficients BFV
runs on, the proven CKKS error bound, the library versions that wrote it and the SHA-256 of
``model.keras``) and ``client.json`` (:class:`ClientSpec`: what a client needs, no weights).
Nothing in it is secret: keys belong to the client, who generates them from the parameters.

Example:
    >>> save_prepared(model, "deploy/")          # developer, after prepare_encryption
    >>> server_model = load_prepared("deploy/")   # server (heras.deployment.Server wraps it)
"""

import hashlib
import json
from pathlib import Path

import numpy as np

import primitives as P
from primitives.serialization import library_versions, write_file

from .spec import CLIENT_FILE, ClientSpec

FORMAT_VERSION = 1
MODEL_FILE, PLAN_FILE = "model.keras", "plan.json"
# libraries whose formats the artifact depends on: SEAL's (through TenSEAL) and ours
_FORMAT_LIBRARIES = ("sealion", "tenseal")


def save_prepared(model, folder, overwrite=False):
    """Write ``model`` and its encryption plan into ``folder`` (refuses to overwrite unless asked)."""
    plan = model._require_plan("save a prepared model")
    folder = Path(folder)
    if (folder / PLAN_FILE).exists() and not overwrite:
        raise FileExistsError(f"{folder / PLAN_FILE} exists; pass overwrite=True to replace it.")
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    weights = {str(i): {name: np.asarray(value).tolist() for name, value in layer._encryption_weights.items()}
               for i, layer in enumerate(model.layers) if getattr(layer, "_encryption_weights", None)}
    record = {"format_version": FORMAT_VERSION, "versions": library_versions(),
              "model_sha256": _sha256(folder / MODEL_FILE), "scheme": plan.scheme,
              "parameters": plan.parameters.to_dict(), "input_scale": plan.input_scale,
              "input_bound": plan.input_bound, "output_scale": plan.output_scale, "depth": plan.depth,
              "max_value": plan.max_value, "layer_scales": plan.layer_scales, "linear_l1": plan.linear_l1,
              "precision_bits": plan.precision_bits, "amplification": plan.amplification,
              "error_bound": plan.error_bound,
              "sum_pooling_layers": [i for i, layer in enumerate(model.layers)
                                     if getattr(layer, "as_sum_pooling", False)],
              "folded_layers": [i for i, layer in enumerate(model.layers) if getattr(layer, "folded", False)],
              "folded_gates": [i for i, layer in enumerate(model.layers) if getattr(layer, "gates_folded", False)],
              "add_factors": {str(i): [int(f) for f in layer.input_factors] for i, layer in enumerate(model.layers)
                              if getattr(layer, "input_factors", None)},
              "activation_coefficients": {
                  str(i): layer.heras_activation.integer_coefficients for i, layer in enumerate(model.layers)
                  if getattr(getattr(layer, "heras_activation", None), "integer_coefficients", None) is not None},
              "encryption_weights": weights}
    write_file(folder / PLAN_FILE, json.dumps(record).encode("utf-8"))
    ClientSpec.from_model(model, record["model_sha256"]).save(folder / CLIENT_FILE)


def load_prepared(folder, allow_version_mismatch=False):
    """Load a folder written by :func:`save_prepared`; the model comes back prepared.

    Raises SerializationError for a missing, corrupted or tampered file, and for a folder
    written by another sealion or TenSEAL version (SEAL's formats and our discretisation may
    differ between them) unless ``allow_version_mismatch=True``.
    """
    from ..models import load_model
    from ..models.preparation import EncryptionPlan
    folder = Path(folder)
    for name in (MODEL_FILE, PLAN_FILE):
        if not (folder / name).is_file():
            raise P.SerializationError(f"{folder} is not a prepared model: {name} is missing. "
                                       "Write one with heras.deployment.save_prepared(model, folder).")
    try:
        record = json.loads((folder / PLAN_FILE).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise P.SerializationError(f"{folder / PLAN_FILE} is corrupted: {error}") from error
    if record.get("format_version") != FORMAT_VERSION:
        raise P.SerializationError(
            f"{folder / PLAN_FILE} has format {record.get('format_version')!r} (written by "
            f"{record.get('versions')}); this heras reads format {FORMAT_VERSION}.")
    _check_versions(record.get("versions") or {}, folder / PLAN_FILE, allow_version_mismatch)
    if _sha256(folder / MODEL_FILE) != record["model_sha256"]:
        raise P.SerializationError(f"{folder / MODEL_FILE} does not match its plan (checksum differs): "
                                   "the model was changed or corrupted after preparation.")
    model = load_model(folder / MODEL_FILE)
    for index, weights in record["encryption_weights"].items():
        model.layers[int(index)].set_encryption_weights(**{name: _exact(value) for name, value in weights.items()})
    for index in record["sum_pooling_layers"]:
        model.layers[index].as_sum_pooling = True
    for index in record["folded_layers"]:
        model.layers[index].folded = True
    for index in record.get("folded_gates", []):
        model.layers[index].gates_folded = True
    for index, factors in record.get("add_factors", {}).items():
        model.layers[int(index)].input_factors = [int(f) for f in factors]
    for index, coefficients in record.get("activation_coefficients", {}).items():
        model.layers[int(index)].heras_activation.integer_coefficients = [int(c) for c in coefficients]
    model.encryption_plan = EncryptionPlan(
        record["scheme"], P.Parameters.from_dict(record["parameters"]), record["input_scale"],
        record["input_bound"], record["output_scale"], record["depth"], record["max_value"],
        record["layer_scales"], record["linear_l1"], precision_bits=record.get("precision_bits"),
        amplification=record.get("amplification"), error_bound=record.get("error_bound"))
    return model


def _check_versions(written, path, allow_mismatch):
    installed = library_versions()
    differing = {name: (written.get(name), installed[name]) for name in _FORMAT_LIBRARIES
                 if written.get(name) != installed[name]}
    if differing and not allow_mismatch:
        listed = ", ".join(f"{name} {old} (installed: {new})" for name, (old, new) in differing.items())
        raise P.SerializationError(
            f"{path} was written by {listed}. Prepare and save the model again with the installed "
            "versions, install the versions that wrote it, or pass allow_version_mismatch=True "
            "to load it anyway.")


def _exact(values):
    """Integer weights back as int64, or Python ints where they exceed int64."""
    array = np.array(values, dtype=object)
    if all(-(2 ** 63) <= v < 2 ** 63 for v in array.ravel()):
        return array.astype(np.int64)
    return array


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
