"""Test helpers shared by several test files."""

import numpy as np
from tenseal import sealapi

from primitives import EncryptedTensor, decrypt, encrypt


def batching_primes(n, bit_sizes):
    """Distinct primes t = 1 mod 2n of the given bit sizes (SEAL's own search)."""
    return tuple(m.value() for m in sealapi.PlainModulus.Batching(n, list(bit_sizes)))


def check_encrypted_op(context, via, op, encrypted_args, plain_args, atol=None, **kwargs):
    """Run ``op`` on encrypted inputs (passed through ``via``) and on plain ones.

    ``encrypted_args`` lists ``(value, encrypt_it)`` pairs; ``plain_args`` the same values in
    plain. BFV (atol None) must match exactly; CKKS within ``atol``.
    """
    inputs = [via(encrypt(context, a)) if enc else a for a, enc in encrypted_args]
    result = op(*inputs, **kwargs)
    expected = op(*plain_args, **kwargs)
    assert isinstance(result, EncryptedTensor)
    decrypted = decrypt(context, result)
    assert decrypted.shape == np.shape(expected)
    if atol is None:
        np.testing.assert_array_equal(decrypted, expected)
    else:
        np.testing.assert_allclose(decrypted, expected, atol=atol, rtol=0)
    return result


def secret_key_bytes(context):
    """SEAL's serialisation of each CRT component's secret key."""
    from primitives.serialization import SealObjectIO
    io = SealObjectIO()
    return [io.to_bytes(component.secret_key) for component in context.components]
