"""Ciphertexts as one raw coefficient array, for moving work between processes quickly.

``EncryptedTensor.serialize`` writes each ciphertext through SEAL's ``save`` (zstd-compressed,
through a scratch file): about 6 ms per ciphertext at n = 8192, while the same ciphertexts'
coefficients copy at memory speed and compress by only ~3% (they look random). A work unit
sent to another process (:mod:`heras.execution.ray_executor`) is therefore packed as a small
header plus one uint64 array ``(features, size, L, n)``: every ciphertext's coefficients,
read through :mod:`.coefficients` (views of SEAL's memory where validated). Unpacking checks
the header against the context (keys and parameters), the array's shape, and every
coefficient against its coefficient prime, then writes them into new ciphertexts.

Only tensors whose ciphertexts share one level, size, NTT form and scale pack this way (a
unit of a BFV network always does); :func:`to_arrays` returns None otherwise, and the caller
uses ``serialize`` instead.
"""

import numpy as np

from ...errors import SchemeError, SerializationError
from . import coefficients

KIND = "sealion-coefficients"


def to_arrays(tensor):
    """``(header, coefficients)`` for a one-component tensor, or None if it cannot pack so."""
    data = tensor.data
    if data.shape[0] != 1 or data.size == 0:
        return None
    component = tensor.context.components[0]
    io = coefficients.io_for(component)
    cts = data.ravel()
    first = cts[0]
    meta = {"parms_id": [int(v) for v in first.parms_id()], "ntt": bool(first.is_ntt_form()),
            "scale": float(first.scale), "size": int(first.size())}
    if io is None or any(list(ct.parms_id()) != meta["parms_id"] or ct.size() != meta["size"]
                         or ct.is_ntt_form() != meta["ntt"] or ct.scale != meta["scale"] for ct in cts):
        return None
    array = np.empty((len(cts), meta["size"], first.coeff_modulus_size(), first.poly_modulus_degree()),
                     dtype=np.uint64)
    for i, ct in enumerate(cts):
        array[i] = io.read(ct)
    header = {"kind": KIND, "key_id": tensor.context.key_id, "parameters": tensor.context.parameters.to_dict(),
              "shape": list(tensor.shape), "batch_size": tensor.batch_size, "layout": list(data.shape),
              "bound": [str(b) for b in tensor.bound.tolist()], "noise_used_bits": tensor.noise_used_bits.tolist(),
              "depth_used": tensor.depth_used, **meta}
    return header, array


def from_arrays(header, array, context):
    """The tensor packed by :func:`to_arrays`, rebuilt under ``context`` (one component).

    Raises:
        SchemeError: the tensor was made under other keys or parameters.
        SerializationError: the header or array is malformed, or a coefficient is not reduced
            modulo its coefficient prime (corrupted data).
    """
    from ...encrypted_tensor import EncryptedTensor
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise SerializationError("These are not packed coefficients of a sealion work unit.")
    if header["key_id"] != context.key_id or header["parameters"] != context.parameters.to_dict():
        raise SchemeError("This work unit was encrypted under other keys or parameters than the given context; "
                          "load it with the context (or public copy) of the client that encrypted it.")
    layout = tuple(header["layout"])
    component = context.components[0]
    moduli = coefficients.level_moduli(component, header["parms_id"])
    expected = (int(np.prod(layout)), header["size"], len(moduli), context.parameters.poly_modulus_degree)
    if len(context.components) != 1 or layout[0] != 1 or not isinstance(array, np.ndarray) \
            or array.dtype != np.uint64 or array.shape != expected:
        raise SerializationError(f"A packed work unit must hold a uint64 array of shape {expected} for one "
                                 f"CRT component. Received: {getattr(array, 'dtype', type(array).__name__)} "
                                 f"{getattr(array, 'shape', '')}.")
    if not (array < np.asarray(moduli, dtype=np.uint64)[None, None, :, None]).all():
        raise SerializationError("A packed work unit holds coefficients outside their coefficient primes: "
                                 "the data is corrupted.")
    io = coefficients.io_for(component)
    if io is None:
        raise SerializationError("This SEAL build offers no coefficient access; send the unit with serialize().")
    n, size, L = expected[3], header["size"], len(moduli)
    cts = np.empty(len(array), dtype=object)
    for i in range(len(array)):
        ct, buffer = io.allocate(header["parms_id"], size, header["ntt"], header["scale"], n, L)
        buffer.reshape(size, L, n)[...] = array[i]
        cts[i] = io.commit(ct, buffer)
    kind = int if context.scheme == "bfv" else float
    bound = np.array([kind(b) for b in header["bound"]], dtype=object if kind is int else float)
    return EncryptedTensor(context, cts.reshape(layout), header["shape"], header["batch_size"], bound,
                           header["noise_used_bits"], header["depth_used"])
