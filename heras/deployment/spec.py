"""`ClientSpec`: what a client needs of a prepared model, and nothing of its weights.

A client generates keys for the model's parameters, quantises its inputs the way the model
expects, and decodes the model's outputs. That is the scheme, the parameters, the input
shape, the input quantisation (scale and saturation bound) and the output scale: a few
hundred bytes of public facts, written as ``client.json`` beside a prepared model. The
weights stay with the server.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import primitives as P
from primitives.serialization import library_versions, read_file, write_file

from ..models.preparation import quantize_inputs

FORMAT_VERSION = 1
CLIENT_FILE = "client.json"
_FIELDS = ("scheme", "parameters", "input_shape", "input_scale", "input_bound", "output_scale")


@dataclass(frozen=True)
class ClientSpec:
    """The public facts a client needs: parameters, input shape, input and output scales.

    Build one with :meth:`from_model` (developer, after ``prepare_encryption``) or
    :meth:`load` (client, from the ``client.json`` that ``save_prepared`` writes).
    """

    scheme: str
    parameters: P.Parameters
    input_shape: tuple
    input_scale: float
    input_bound: float
    output_scale: float
    model_sha256: str | None = None
    versions: dict = field(default_factory=library_versions)

    @classmethod
    def from_model(cls, model, model_sha256=None):
        """The spec of a prepared heras model (one input)."""
        plan = model._require_plan("describe the model to a client")
        if len(model.inputs) != 1:
            raise ValueError(f"A client encrypts one input tensor; this model has {len(model.inputs)} inputs.")
        return cls(plan.scheme, plan.parameters, tuple(int(d) for d in model.inputs[0].shape[1:]),
                   float(plan.input_scale), float(plan.input_bound), float(plan.output_scale), model_sha256)

    # ----------------------------------------------------------------- client-side maths
    def quantize(self, x):
        """``x`` (batch, *input_shape) as the encrypted model reads it; checks the shape."""
        x = np.asarray(x)
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise P.ShapeError(f"Expected inputs of shape (batch, {', '.join(map(str, self.input_shape))}). "
                               f"Received: shape {x.shape}. Reshape the batch to the model's input shape.")
        return quantize_inputs(x, self.scheme, self.input_scale, self.input_bound)

    def decode(self, raw):
        """Decrypted outputs (integers for BFV) as float logits."""
        return np.asarray(raw, dtype=np.float64) / self.output_scale

    # ----------------------------------------------------------------- files
    def to_dict(self):
        return {"format_version": FORMAT_VERSION, "versions": self.versions, "scheme": self.scheme,
                "parameters": self.parameters.to_dict(), "input_shape": list(self.input_shape),
                "input_scale": self.input_scale, "input_bound": self.input_bound,
                "output_scale": self.output_scale, "model_sha256": self.model_sha256}

    @classmethod
    def from_dict(cls, record, source="the client spec"):
        if not isinstance(record, dict):
            raise P.SerializationError(f"{source} is not a client spec (expected a JSON object).")
        if record.get("format_version") != FORMAT_VERSION:
            raise P.SerializationError(
                f"{source} has format {record.get('format_version')!r} (written by {record.get('versions')}); "
                f"this heras reads format {FORMAT_VERSION}. Re-export it with save_prepared.")
        missing = [name for name in _FIELDS if name not in record]
        if missing:
            raise P.SerializationError(f"{source} is incomplete: {', '.join(missing)} missing.")
        return cls(record["scheme"], P.Parameters.from_dict(record["parameters"]),
                   tuple(int(d) for d in record["input_shape"]), float(record["input_scale"]),
                   float(record["input_bound"]), float(record["output_scale"]), record.get("model_sha256"),
                   dict(record.get("versions") or {}))

    def save(self, path):
        """Write ``client.json`` (atomically)."""
        write_file(path, json.dumps(self.to_dict(), indent=1).encode("utf-8"))

    @classmethod
    def load(cls, path):
        """Read a spec; ``path`` is the file or the prepared folder that holds ``client.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / CLIENT_FILE
        data = read_file(path, "client spec")
        try:
            record = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise P.SerializationError(f"{path} is corrupted: {error}") from error
        return cls.from_dict(record, source=str(path))

    def __repr__(self):
        return (f"ClientSpec({self.scheme.upper()}, input {self.input_shape}, n="
                f"{self.parameters.poly_modulus_degree}, input scale {self.input_scale:g})")
