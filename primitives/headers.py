"""Type and range checks for every field of a serialised context or tensor header.

A header is JSON written by :func:`primitives.serialization.pack` and covered by its SHA-256
digest only as far as the blobs go: anyone can re-pack a header under a valid checksum. So
every field is checked before it is used (its type, its range, and its agreement with the
other fields and with the context), and a bad one is refused with a
:class:`SerializationError` that names the field, what was expected and what was received,
instead of a bare ``int()`` error deep inside or, worse, a tensor that is quietly wrong.
"""

import math
import re

from .errors import ParameterError, SerializationError
from .parameters import Parameters

_KEY_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"[0-9]{1,200}")
MAX_FEATURES = 2 ** 31       # features per sample: far beyond any model, small enough to multiply
# JSON types of the optional Parameters fields (the required ones are checked by Parameters)
_PARAMETER_TYPES = {"depth": int, "security": int, "max_value": (int, type(None)),
                    "linear_bits": (int, float, type(None)), "noise_margin_bits": (int, float, type(None)),
                    "precision_bits": (int, float, type(None)), "integer_bits": (int, float, type(None)),
                    "amplification_bits": (int, type(None)), "scale_bits": (int, type(None)),
                    "base_primes": int, "notes": list}
_PARAMETER_EXPECTED = {int: "an integer", (int, type(None)): "an integer or null",
                       (int, float, type(None)): "a number or null", list: "a list of strings"}
_NON_NEGATIVE = {"depth", "max_value", "noise_margin_bits", "precision_bits", "integer_bits",
                 "amplification_bits"}
MAX_DEPTH = 64               # multiplications on a path: far beyond any parameters SEAL allows


def refuse(kind, name, expected, value):
    """Raise the error for header field ``name`` of a ``kind`` artifact."""
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise SerializationError(
        f"The {kind} header's `{name}` must be {expected}. Received: {name}={shown}. The bytes were "
        "altered or not written by sealion's serialize(); re-create them with serialize().")


def integer(kind, header, name, minimum, maximum=None):
    """``header[name]`` as an int in [minimum, maximum] (JSON booleans are not integers)."""
    value = header.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        limit = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        refuse(kind, name, f"an integer {limit}", value)
    return value


def integer_list(kind, header, name, length=None, minimum=0, maximum=None):
    """``header[name]`` as a list of ints in [minimum, maximum], of ``length`` items if given."""
    values = header.get(name)
    limit = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    expected = f"a list of {'' if length is None else f'{length} '}integers {limit}"
    if not isinstance(values, list) or (length is not None and len(values) != length) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum or (maximum is not None and v > maximum)
            for v in values):
        refuse(kind, name, expected, values)
    return values


def check_container(header, kind):
    """The fields :func:`pack` writes for every artifact (``kind`` and the format version are
    checked by the caller, which has the better message for them)."""
    if not isinstance(header, dict):
        raise SerializationError(f"The {kind} header is not a JSON object (received "
                                 f"{type(header).__name__}); these bytes were not written by sealion.")
    integer_list(kind, header, "blob_sizes")
    if not isinstance(header.get("sha256"), str) or not _SHA256.fullmatch(header["sha256"]):
        refuse(kind, "sha256", "64 lower-case hex digits (a SHA-256 digest)", header.get("sha256"))
    versions = header.get("versions")
    if not isinstance(versions, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in versions.items()):
        refuse(kind, "versions", "a mapping of library names to version strings", versions)


def check_parameters(kind, header):
    """``header["parameters"]`` as :class:`Parameters` (every field checked by Parameters)."""
    data = header.get("parameters")
    if not isinstance(data, dict):
        refuse(kind, "parameters", "a mapping of encryption parameters", data)
    for name, types in _PARAMETER_TYPES.items():
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, types) or (
                isinstance(value, (int, float)) and not math.isfinite(value)) or (
                name in _NON_NEGATIVE and value is not None and value < 0):
            raise SerializationError(
                f"The {kind} header's `parameters` are invalid: `{name}` must be "
                f"{_PARAMETER_EXPECTED[types]}{' >= 0' if name in _NON_NEGATIVE else ''}. Received: {value!r}")
    try:
        return Parameters.from_dict(data)
    except (ParameterError, TypeError, ValueError) as error:
        raise SerializationError(f"The {kind} header's `parameters` are invalid: {error}") from error


def check_key_id(kind, header):
    """``header["key_id"]``: the 32 hex digits a Context names its keys with."""
    key_id = header.get("key_id")
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        refuse(kind, "key_id", "32 lower-case hex digits", key_id)
    return key_id


def check_context_header(header):
    """Check a context header; return its :class:`Parameters`."""
    parameters = check_parameters("context", header)
    check_key_id("context", header)
    if not isinstance(header.get("has_secret_key"), bool):
        refuse("context", "has_secret_key", "true or false", header.get("has_secret_key"))
    return parameters


def check_tensor_header(header, context):
    """Check a tensor header against itself and against ``context`` (the keys it loads under).

    Returns ``(shape, batch_size, layout, bound, noise_used_bits, depth_used)`` ready for the
    EncryptedTensor constructor; ``bound`` is a list of ints (BFV) or floats (CKKS).
    """
    kind = "tensor"
    params = context.parameters
    if header.get("scheme") != params.scheme:
        refuse(kind, "scheme", f"{params.scheme!r}, the scheme of the context it loads under", header.get("scheme"))
    shape = integer_list(kind, header, "shape", minimum=0, maximum=MAX_FEATURES)
    features = math.prod(shape)
    if features > MAX_FEATURES:
        refuse(kind, "shape", f"a shape of at most {MAX_FEATURES} features", shape)
    layout = integer_list(kind, header, "layout", length=3, minimum=0, maximum=MAX_FEATURES)
    batch_size = integer(kind, header, "batch_size", 1, MAX_FEATURES * params.slot_count)
    groups = -(-batch_size // params.slot_count)
    expected_layout = [len(context.components), groups, features]
    if layout != expected_layout:
        refuse(kind, "layout", f"{expected_layout} (CRT components of the context, ciphertext groups "
               f"for batch_size={batch_size} at {params.slot_count} slots, features of shape {shape})", layout)
    bound = _bounds(header.get("bound"), features, params)
    noise = header.get("noise_used_bits")
    budget = params.coeff_modulus_bits
    lengths = {len(context.components), max(1, len(params.plain_moduli))}
    if not isinstance(noise, list) or len(noise) not in lengths or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= budget for v in noise):
        refuse(kind, "noise_used_bits", f"a list of {' or '.join(map(str, sorted(lengths)))} numbers "
               f"from 0 to {budget} (bits of the coefficient modulus)", noise)
    depth_used = integer(kind, header, "depth_used", 0, MAX_DEPTH)
    return shape, batch_size, layout, bound, noise, depth_used


def _bounds(values, features, params):
    """Per-feature bounds: decimal strings of ints up to the largest exact value (BFV), or
    finite non-negative numbers (CKKS)."""
    if params.scheme == "bfv":
        limit = params.max_exact_value
        expected = (f"a list of {features} decimal strings of integers from 0 to {limit} "
                    "(the largest value these plaintext moduli hold exactly)")
        if not isinstance(values, list) or len(values) != features or not all(
                isinstance(v, str) and _DECIMAL.fullmatch(v) and int(v) <= limit for v in values):
            refuse("tensor", "bound", expected, values)
        return [int(v) for v in values]
    expected = f"a list of {features} finite numbers >= 0 (as decimal strings)"
    if not isinstance(values, list) or len(values) != features:
        refuse("tensor", "bound", expected, values)
    bounds = []
    for value in values:
        try:
            number = float(value) if isinstance(value, str) else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number < 0:
            refuse("tensor", "bound", expected, values)
        bounds.append(number)
    return bounds
