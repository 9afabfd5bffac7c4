"""BoundTensor propagation proves the same bounds the encrypted backend tracks, and they hold."""

import numpy as np

import primitives as P
from primitives import BoundTensor


def pipeline(x, kernel, w, bias):
    h = P.conv2d(x, kernel, bias=[1, -2], strides=2, padding="same")
    h = P.sum_pool2d(P.square(h), 2, strides=1)
    h = P.matmul(P.flatten(h), w, bias)
    return P.subtract(P.multiply(h, -3), 7)


def test_bounds_match_the_encrypted_backend_and_hold(bfv_big_context, rng):
    x = rng.integers(-3, 4, size=(4, 6, 6, 1))
    kernel, w = rng.integers(-2, 3, size=(3, 3, 1, 2)), rng.integers(-4, 5, size=(8, 3))
    bias = rng.integers(-9, 9, size=3)
    proven = pipeline(BoundTensor(3, shape=(6, 6, 1)), kernel, w, bias)
    encrypted = pipeline(P.encrypt(bfv_big_context, x, bound=3), kernel, w, bias)
    assert proven.bound.tolist() == encrypted.bound.tolist()
    plain = pipeline(x, kernel, w, bias)
    assert np.all(np.abs(plain) <= proven.bound)
    assert isinstance(proven.max, int)


def test_polynomial_and_plain_first_operands():
    b = BoundTensor([2, 5])
    assert P.polynomial(b, [1, -2, 3]).bound.tolist() == [1 + 4 + 12, 1 + 10 + 75]
    assert P.subtract(10, b).bound.tolist() == [12, 15]
    assert P.multiply(-2, b).bound.tolist() == [4, 10]
