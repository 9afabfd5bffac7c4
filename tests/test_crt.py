"""BFV with several plaintext primes: exact signed integers far beyond one 60-bit modulus."""

import math

import numpy as np
import pytest

import primitives as P
from primitives import crt, decrypt, encrypt


def test_values_above_2_to_the_62_round_trip_exactly(bfv_big_context):
    limit = bfv_big_context.parameters.max_exact_value
    assert limit > 2 ** 110
    values = np.array([[2 ** 62 + 1, -(2 ** 100) - 7, limit, -limit, 0, 1]], dtype=object)
    decrypted = decrypt(bfv_big_context, encrypt(bfv_big_context, values, bound=limit))
    assert decrypted.tolist() == values.tolist()


def test_arithmetic_beyond_2_to_the_62_is_exact(bfv_big_context):
    a = np.array([[2 ** 70 + 3, -(2 ** 65)], [12345678901234567890, 5]], dtype=object)
    bound = 2 ** 71
    x = encrypt(bfv_big_context, a, bound=bound)
    kernel = np.array([[3, -1], [-2, 7]])
    result = decrypt(bfv_big_context, P.matmul(x, kernel, bias=[2 ** 63, -1]))
    expected = a.dot(kernel.astype(object)) + np.array([2 ** 63, -1], dtype=object)
    assert result.tolist() == expected.tolist()


@pytest.mark.parametrize("moduli", [[7681], [12289, 40961], [65537, 786433, 1179649],
                                    [1152921504606584833, 1152921504598720513]])
def test_reconstruct_inverts_residues(moduli, rng):
    product = math.prod(moduli)
    half = (product - 1) // 2
    values = np.array([0, 1, -1, half, -half] + [int(v) for v in rng.integers(-2 ** 62, 2 ** 62, 20)],
                      dtype=object)
    values = np.array([v if abs(v) <= half else v % half for v in values], dtype=object)
    residues = [crt.residues(values, t) for t in moduli]
    assert crt.reconstruct(residues, moduli).tolist() == values.tolist()


def test_non_integers_are_refused_for_bfv(bfv_context):
    with pytest.raises(TypeError, match="integers only"):
        encrypt(bfv_context, np.array([[0.5, 1.0]]))


def test_plain_oracle_stays_exact_beyond_2_to_the_63_with_padding():
    """Padding must not bring numpy int64 into exact Python-int arithmetic."""
    x = np.full((1, 3, 3, 1), 2 ** 62, dtype=object)
    out = P.conv2d(x, np.ones((3, 3, 1, 1), dtype=int), padding="same")
    assert out[0, 1, 1, 0] == 9 * 2 ** 62 and all(isinstance(v, int) for v in out.ravel())
