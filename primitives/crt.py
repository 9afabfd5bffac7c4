"""Chinese remaindering for BFV: signed integers to residues mod t_i and back, exactly.

Values are numpy arrays of dtype int64 when they fit, otherwise dtype object holding Python
ints (values beyond 2^63 occur when the CRT product T exceeds 2^64). Reconstruction uses a
centred lift: a residue vector maps to the unique integer in (-T/2, T/2).
"""

import math

import numpy as np


def as_integer_array(values):
    """Return ``values`` as an exact integer array (int64, or object for huge integers).

    Raises:
        TypeError: if a value is not an integer (BFV encodes integers only).
    """
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64) if array.dtype != np.uint64 else array.astype(object)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise TypeError("BFV encrypts integers only, but the values have fractional parts. "
                            "Scale and round them first (heras' prepare_encryption does this), "
                            "or use the CKKS scheme for approximate real arithmetic.")
        if np.all(np.abs(array) < 2.0 ** 53):
            return array.astype(np.int64)
        return np.vectorize(int, otypes=[object])(array)
    if array.dtype == object:
        flat = array.ravel()
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
            raise TypeError("BFV encrypts integers only; found non-integer objects in the input.")
        converted = np.array([int(v) for v in flat], dtype=object).reshape(array.shape)
        if all(-(2 ** 63) <= v < 2 ** 63 for v in flat):
            return converted.astype(np.int64)
        return converted
    raise TypeError(f"BFV encrypts integers only. Received an array of dtype {array.dtype}.")


def max_abs(values):
    """Return max |value| of an integer array as a Python int (0 for an empty array)."""
    if values.size == 0:
        return 0
    if values.dtype == object:
        return max(abs(int(v)) for v in values.ravel())
    return max(-int(values.min()), int(values.max()))


def residues(values, modulus):
    """Return ``values mod modulus`` as a uint64 array of the same shape (values may be negative)."""
    if values.dtype == object:
        return np.array([int(v) % modulus for v in values.ravel()], dtype=np.uint64).reshape(values.shape)
    return np.mod(values, np.int64(modulus)).astype(np.uint64)


def reconstruct(residue_arrays, moduli):
    """Return the centred integers whose residues mod ``moduli`` are ``residue_arrays``.

    Args:
        residue_arrays: one array per modulus, entries in [0, t_i).
        moduli: the pairwise-coprime moduli t_i.

    Returns:
        int64 array when T = prod(t_i) < 2^63, else an object array of Python ints.
    """
    moduli = [int(t) for t in moduli]
    product = math.prod(moduli)
    half = product // 2
    if len(moduli) == 1:
        r = residue_arrays[0].astype(np.int64)
        return np.where(r > half, r - product, r)
    if product < 2 ** 62:
        return _reconstruct_int64(residue_arrays, moduli, product, half)
    total = np.zeros(residue_arrays[0].shape, dtype=object)
    for residue, t in zip(residue_arrays, moduli):
        partial = product // t
        coefficient = partial * pow(partial, -1, t)
        total = total + residue.astype(object) * coefficient
    total = total % product
    return np.where(total > half, total - product, total)


def _reconstruct_int64(residue_arrays, moduli, product, half):
    """Garner's mixed-radix reconstruction in int64 (exact while T < 2^62)."""
    result = residue_arrays[0].astype(np.int64)
    radix = moduli[0]
    for residue, t in zip(residue_arrays[1:], moduli[1:]):
        inverse = pow(radix % t, -1, t)
        # digit = (r - result) * radix^-1 mod t, computed with products below 2^63
        difference = np.mod(residue.astype(np.int64) - np.mod(result, t), t)
        digit = _mulmod(difference, inverse, t)
        result = result + digit * radix
        radix *= t
    return np.where(result > half, result - product, result)


def _mulmod(a, scalar, modulus):
    """Return (a * scalar) mod modulus for int64 arrays without overflow."""
    if modulus < 2 ** 31:
        return np.mod(a * scalar, modulus)
    return np.array([(int(v) * scalar) % modulus for v in a.ravel()], dtype=np.int64).reshape(a.shape)
