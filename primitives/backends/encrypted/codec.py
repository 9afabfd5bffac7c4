"""Client-side encryption and decryption of batch-in-slots tensors (BFV with CRT, CKKS)."""

import math

import numpy as np
from tenseal import sealapi

from ... import crt
from ...encrypted_tensor import EncryptedTensor
from ...errors import NoiseBudgetExhaustedError, OverflowRiskError, ShapeError
from . import guards


def encrypt(context, values, bound=None):
    """Encrypt ``values`` of shape (batch, *features) with the context's public key.

    Args:
        context: a :class:`Context` (public contexts can encrypt too).
        values: BFV: integers; CKKS: reals.
        bound: public bound on |value| that ops propagate. Default: the smallest power of two
            >= max |value| (this reveals that power of two to whoever holds the tensor; pass
            the bound of your data domain, e.g. 255 for pixels, to reveal nothing).

    Raises:
        ShapeError: if ``values`` has no batch axis or is empty.
        OverflowRiskError: if a value exceeds ``bound`` or the parameters' exact range.
    """
    array = np.asarray(values)
    if array.ndim < 1 or array.shape[0] == 0:
        raise ShapeError("encrypt expects an array of shape (batch, *features) with batch >= 1. "
                         f"Received shape {array.shape}; add a batch axis with x[None] for one sample.")
    bfv = context.scheme == "bfv"
    array = crt.as_integer_array(array) if bfv else _as_real(array)
    batch, shape = array.shape[0], array.shape[1:]
    features = array.reshape(batch, -1)
    largest = guards.max_abs(features)
    bound = _check_bound(context, largest, bound)
    slots = context.slot_count
    groups = math.ceil(batch / slots)
    data = np.empty((len(context.components), groups, features.shape[1]), dtype=object)
    for c, component in enumerate(context.components):
        columns = crt.residues(features, component.plain_modulus) if bfv else features
        for g in range(groups):
            block = columns[g * slots:(g + 1) * slots]
            for f in range(features.shape[1]):
                data[c, g, f] = _encrypt_column(context, component, block[:, f])
    per_feature = np.array([bound] * features.shape[1], dtype=object if bfv else np.float64)
    return EncryptedTensor(context, data, shape, batch, per_feature)


def _as_real(array):
    if array.dtype.kind not in "biuf":
        raise TypeError(f"CKKS encrypts real numbers. Received an array of dtype {array.dtype}.")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("CKKS cannot encrypt NaN or infinite values; clean the input first.")
    return array


def _check_bound(context, largest, bound):
    if bound is None:
        bound = 1 if largest <= 1 else 2 ** math.ceil(math.log2(largest))
    if context.scheme == "bfv":
        bound = int(bound)
        limit = context.parameters.max_exact_value
        if bound > limit:
            raise OverflowRiskError(
                f"encrypt: bound {bound} exceeds the largest value these BFV parameters hold "
                f"exactly ({limit}). Select parameters with max_value >= {bound}.")
    else:
        bound = float(bound)
    if largest > bound:
        raise OverflowRiskError(f"encrypt: the data holds |value| = {largest}, above the declared "
                                f"bound {bound}. Pass a bound that covers the data.")
    return bound


def _encrypt_column(context, component, column):
    plain, out = sealapi.Plaintext(), sealapi.Ciphertext(component.seal_context)
    padding = context.slot_count - len(column)
    if component.plain_modulus:
        component.encoder.encode(column.tolist() + [0] * padding, plain)
    else:
        scale = 2.0 ** context.parameters.scale_bits
        component.encoder.encode(column.tolist() + [0.0] * padding, scale, plain)
    component.encrypt(plain, out)
    return out


def decrypt(context, tensor):
    """Decrypt ``tensor`` to an array of shape (batch, *shape); needs the secret key.

    BFV decryption first measures each ciphertext's noise budget and refuses to return
    values whose budget is exhausted (they would be garbage). CRT residues are combined
    into exact signed integers (int64, or Python ints beyond 2^63).
    """
    context.require_secret_key("decrypt")
    if not isinstance(tensor, EncryptedTensor):
        raise TypeError(f"decrypt expects an EncryptedTensor. Received: {type(tensor).__name__}")
    if getattr(tensor, "packing", None) is not None:
        raise TypeError(f"This tensor is packed for {tensor.packing} (not batch-across-slots); read it "
                        "with its decrypt_samples(context).")
    if tensor.context.key_id != context.key_id:
        raise PermissionError("This tensor was encrypted under other keys; only the client whose "
                              "context generated those keys can decrypt it.")
    slots, bfv = context.slot_count, context.scheme == "bfv"
    per_component = []
    for c, component in enumerate(context.components):
        columns = []
        for f in range(tensor.size):
            values = [_decrypt_one(component, tensor.data[c, g, f], bfv) for g in range(tensor.groups)]
            columns.append(np.concatenate(values)[:tensor.batch_size])
        per_component.append(np.stack(columns, axis=1) if columns else
                             np.zeros((tensor.batch_size, 0), dtype=np.uint64 if bfv else float))
    if bfv:
        flat = crt.reconstruct(per_component, context.parameters.plain_moduli)
    else:
        flat = per_component[0]
    return flat.reshape((tensor.batch_size,) + tensor.shape)


def _decrypt_one(component, ciphertext, bfv):
    plain = sealapi.Plaintext()
    if bfv:
        budget = component.decryptor.invariant_noise_budget(ciphertext)
        if budget <= 0:
            raise NoiseBudgetExhaustedError(
                "A ciphertext's noise budget is exhausted (0 bits): its decryption would be "
                "garbage. The computation was deeper than the parameters allow; select "
                "parameters with a larger depth or linear_bits.")
        component.decryptor.decrypt(ciphertext, plain)
        return np.array(component.encoder.decode_uint64(plain), dtype=np.uint64)
    component.decryptor.decrypt(ciphertext, plain)
    return np.array(component.encoder.decode_double(plain), dtype=np.float64)
