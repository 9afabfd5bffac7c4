"""Every BFV op against the numpy oracle: exact equality, directly and after a round trip."""

import numpy as np
import pytest

import primitives as P
from primitives import decrypt, encrypt
from tests.helpers import check_encrypted_op


def check(context, via, op, encrypted_args, plain_args, **kwargs):
    return check_encrypted_op(context, via, op, encrypted_args, plain_args, **kwargs)


@pytest.fixture
def x(rng):
    return rng.integers(-100, 100, size=(5, 3, 4))


@pytest.fixture
def y(rng):
    return rng.integers(-100, 100, size=(5, 3, 4))


def test_add_sub_negate(bfv_context, via, x, y):
    check(bfv_context, via, P.add, [(x, True), (y, True)], [x, y])
    check(bfv_context, via, P.subtract, [(x, True), (y, True)], [x, y])
    check(bfv_context, via, P.negate, [(x, True)], [x])


def test_plain_operands_and_broadcasting(bfv_context, via, x, y, rng):
    row = rng.integers(-9, 9, size=(4,))
    check(bfv_context, via, P.add, [(x, True), (row, False)], [x, row])            # per feature
    check(bfv_context, via, P.add, [(x, True), (y, False)], [x, y])                # per sample
    check(bfv_context, via, P.subtract, [(7, False), (x, True)], [7, x])           # plain - enc
    check(bfv_context, via, P.add, [(x, True), (y[:, :1, :], True)], [x, y[:, :1, :]])  # enc bcast


def test_multiply(bfv_context, via, x, y, rng):
    check(bfv_context, via, P.multiply, [(x, True), (-3, False)], [x, -3])
    check(bfv_context, via, P.multiply, [(x, True), (0, False)], [x, 0])
    check(bfv_context, via, P.multiply, [(x, True), (1, False)], [x, 1])
    check(bfv_context, via, P.multiply, [(x, True), (y, False)], [x, y])
    check(bfv_context, via, P.multiply, [(x, True), (y, True)], [x, y])
    check(bfv_context, via, P.square, [(x, True)], [x])


def test_polynomial(bfv_context, via, x):
    check(bfv_context, via, P.polynomial, [(x, True), ([3, -2, 5], False)], [x, [3, -2, 5]])
    check(bfv_context, via, P.polynomial, [(x, True), ([0, 0, 1], False)], [x, [0, 0, 1]])


def test_matmul_with_negative_zero_and_unit_weights(bfv_context, via, rng):
    x = rng.integers(-50, 50, size=(6, 10))
    kernel = rng.integers(-4, 5, size=(10, 3))
    kernel[:, 0] = 0            # an output with no taps at all: bias only
    kernel[0, 1], kernel[1, 1] = 1, -1
    bias = np.array([5, -7, 0])
    check(bfv_context, via, P.matmul, [(x, True), (kernel, False)], [x, kernel], bias=bias)
    check(bfv_context, via, P.matmul, [(x, True), (kernel, False)], [x, kernel])


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv2d(bfv_context, via, rng, padding, strides):
    images = rng.integers(0, 16, size=(3, 7, 7, 2))
    kernel = rng.integers(-3, 4, size=(3, 3, 2, 4))
    check(bfv_context, via, P.conv2d, [(images, True), (kernel, False)], [images, kernel],
          bias=np.array([1, -2, 0, 3]), strides=strides, padding=padding)


@pytest.mark.parametrize("padding, strides, output_rows", [("same", 2, (1, 3)), ("valid", 1, (0, 1)),
                                                          ("same", 1, (4, 7))])
def test_conv2d_band_of_output_rows(bfv_context, via, rng, padding, strides, output_rows):
    """Only rows [start, stop) of the output map: equal to the full numpy result's slice."""
    images = rng.integers(0, 16, size=(3, 7, 7, 2))
    kernel = rng.integers(-3, 4, size=(3, 3, 2, 4))
    bias = np.array([1, -2, 0, 3])
    full = P.conv2d(images, kernel, bias, strides=strides, padding=padding)
    band = P.conv2d(images, kernel, bias, strides=strides, padding=padding, output_rows=output_rows)
    np.testing.assert_array_equal(band, full[:, output_rows[0]:output_rows[1]])
    check(bfv_context, via, P.conv2d, [(images, True), (kernel, False)], [images, kernel],
          bias=bias, strides=strides, padding=padding, output_rows=output_rows)
    proven = P.conv2d(P.BoundTensor(15, shape=(7, 7, 2)), kernel, bias, strides=strides, padding=padding)
    proven_band = P.conv2d(P.BoundTensor(15, shape=(7, 7, 2)), kernel, bias, strides=strides, padding=padding,
                           output_rows=output_rows)
    assert proven_band.bound.tolist() == proven.bound[output_rows[0]:output_rows[1]].tolist()


@pytest.mark.parametrize("output_rows", [(2, 2), (-1, 1), (0, 9), "rows", (0, 1, 2)])
def test_conv2d_rejects_bad_output_rows(rng, output_rows):
    with pytest.raises(P.ShapeError, match="output_rows"):
        P.conv2d(np.zeros((1, 7, 7, 1)), np.ones((3, 3, 1, 2)), output_rows=output_rows)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_sum_pool_reshape_flatten_sum(bfv_context, via, rng, padding):
    images = rng.integers(-20, 20, size=(4, 5, 5, 3))
    check(bfv_context, via, P.sum_pool2d, [(images, True)], [images], pool_size=2, padding=padding)
    check(bfv_context, via, P.reshape, [(images, True), ((25, 3), False)], [images, (25, 3)])
    check(bfv_context, via, P.flatten, [(images, True)], [images])
    check(bfv_context, via, P.sum, [(images, True)], [images], axis=(1, 2))
    check(bfv_context, via, P.sum, [(images, True)], [images], axis=-1)


def test_average_pool_is_refused_with_the_exact_alternative(bfv_context, rng):
    images = encrypt(bfv_context, rng.integers(0, 5, size=(2, 4, 4, 1)))
    with pytest.raises(NotImplementedError, match="sum_pool2d"):
        P.avg_pool2d(images, 2)


def test_operators(bfv_context, x, y):
    a, b = encrypt(bfv_context, x), encrypt(bfv_context, y)
    np.testing.assert_array_equal(decrypt(bfv_context, a + b - 3 * a), x + y - 3 * x)
    np.testing.assert_array_equal(decrypt(bfv_context, -(a * b) + 1), -(x * y) + 1)
    np.testing.assert_array_equal(decrypt(bfv_context, 5 - a), 5 - x)


def test_batch_larger_than_slots_is_split_into_groups(bfv_context, rng):
    """4096 slots: a batch of 5000 spans two ciphertext groups, transparently."""
    x = rng.integers(-30, 30, size=(5000, 2))
    kernel = np.array([[2, -1], [3, 4]])
    encrypted = encrypt(bfv_context, x)
    assert encrypted.groups == 2 and encrypted.ciphertext_count == 2 * 2 * 2
    result = P.square(P.matmul(encrypted, kernel, bias=[1, -1]))
    np.testing.assert_array_equal(decrypt(bfv_context, result), (x @ kernel + [1, -1]) ** 2)


def test_dnn_pipeline_matches_numpy_and_keeps_noise_budget(bfv_context, rng):
    """784 -> 30 -> square -> 10 style network (scaled down) stays exact and within budget."""
    x = rng.integers(0, 16, size=(8, 16))
    w1, w2 = rng.integers(-3, 4, size=(16, 6)), rng.integers(-3, 4, size=(6, 3))
    hidden = P.square(P.matmul(encrypt(bfv_context, x, bound=15), w1))
    out = P.matmul(hidden, w2)
    np.testing.assert_array_equal(decrypt(bfv_context, out), ((x @ w1) ** 2) @ w2)
    assert out.depth_used == 1
    measured = out.noise_budget()
    assert measured > 0 and out.noise_budget_estimate_bits <= measured  # the model is conservative


def test_deferred_relinearisation_stays_exact(bfv_big_context, rng, via):
    """BFV products keep three polynomials until the next product needs two: linear layers,
    further products, serialisation and decryption all work on them, exactly."""
    x = rng.integers(-20, 20, size=(12, 5))
    w = rng.integers(-9, 9, size=(5, 3))
    enc = via(P.encrypt(bfv_big_context, x, bound=20))
    squared = P.square(enc)
    assert {ct.size() for ct in squared.data.ravel()} == {3}
    linear = via(P.matmul(squared, w))
    fourth = P.square(linear)  # relinearises its (deferred) inputs first
    expected = ((x ** 2) @ w) ** 2
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, fourth).astype(object), expected.astype(object))
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, linear), (x ** 2) @ w)
    assert P.decrypt(bfv_big_context, P.multiply(squared, enc)).tolist() == (x ** 3).tolist()
