"""Every CKKS op against the numpy oracle within a stated tolerance, directly and after a round
trip. Tolerance: absolute error below 1e-3 for values of magnitude <= ~10 at scale 2^30."""

import numpy as np
import pytest

import primitives as P
from primitives import decrypt, encrypt
from tests.helpers import check_encrypted_op

ATOL = 1e-3


def check(context, via, op, encrypted_args, plain_args, **kwargs):
    return check_encrypted_op(context, via, op, encrypted_args, plain_args, atol=ATOL, **kwargs)


@pytest.fixture
def x(rng):
    return rng.uniform(-2, 2, size=(6, 2, 3))


@pytest.fixture
def y(rng):
    return rng.uniform(-2, 2, size=(6, 2, 3))


def test_add_sub_negate(ckks_context, via, x, y, rng):
    check(ckks_context, via, P.add, [(x, True), (y, True)], [x, y])
    check(ckks_context, via, P.subtract, [(x, True), (y, True)], [x, y])
    check(ckks_context, via, P.negate, [(x, True)], [x])
    check(ckks_context, via, P.add, [(x, True), (y, False)], [x, y])
    check(ckks_context, via, P.subtract, [(0.5, False), (x, True)], [0.5, x])


def test_multiply_square_polynomial(ckks_context, via, x, y):
    check(ckks_context, via, P.multiply, [(x, True), (-0.75, False)], [x, -0.75])
    check(ckks_context, via, P.multiply, [(x, True), (y, False)], [x, y])
    check(ckks_context, via, P.multiply, [(x, True), (y, True)], [x, y])
    check(ckks_context, via, P.square, [(x, True)], [x])
    check(ckks_context, via, P.polynomial, [(x, True), ([0.1, 0.5, 0.25], False)], [x, [0.1, 0.5, 0.25]])


def test_levels_are_tracked(ckks_context, x):
    encrypted = encrypt(ckks_context, x)
    assert encrypted.levels_left == 3
    assert P.square(encrypted).levels_left == 2
    assert P.add(encrypted, 1.0).levels_left == 3
    assert P.sum_pool2d(P.reshape(encrypted, (2, 3, 1)), 1).levels_left == 3  # unit weights: no rescale


def test_matmul_conv_pool(ckks_context, via, rng):
    v = rng.uniform(-1, 1, size=(5, 12))
    kernel = rng.uniform(-1, 1, size=(12, 4))
    kernel[:, 2] = 0.0
    check(ckks_context, via, P.matmul, [(v, True), (kernel, False)], [v, kernel], bias=[0.5, 0, -1, 2])
    images = rng.uniform(0, 1, size=(2, 6, 6, 2))
    conv_kernel = rng.uniform(-1, 1, size=(3, 3, 2, 3))
    check(ckks_context, via, P.conv2d, [(images, True), (conv_kernel, False)], [images, conv_kernel],
          strides=2, padding="same")
    check(ckks_context, via, P.avg_pool2d, [(images, True)], [images], pool_size=2, padding="same")
    check(ckks_context, via, P.sum_pool2d, [(images, True)], [images], pool_size=3, strides=1)


def test_dense_square_dense_network(ckks_context, rng):
    """The 3-level path of DNN-30 (dense, square, dense), scaled down."""
    x = rng.uniform(0, 1, size=(32, 20))
    w1, w2 = rng.normal(0, 0.3, size=(20, 5)), rng.normal(0, 0.3, size=(5, 3))
    out = P.matmul(P.square(P.matmul(encrypt(ckks_context, x), w1, bias=[0.1] * 5)), w2)
    expected = ((x @ w1 + 0.1) ** 2) @ w2
    np.testing.assert_allclose(decrypt(ckks_context, out), expected, atol=ATOL)
    assert out.levels_left == 0


def test_residual_sum_of_different_depths(ckks_context, via, x):
    """x + x^2 + 0.5 x: operands at different levels and scales are matched exactly."""
    encrypted = via(encrypt(ckks_context, x))
    result = P.add(P.add(encrypted, P.square(encrypted)), P.multiply(encrypted, 0.5))
    np.testing.assert_allclose(decrypt(ckks_context, result), x + x ** 2 + 0.5 * x, atol=ATOL)
