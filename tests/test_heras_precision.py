"""CKKS precision by construction: the proven error bound holds on real ciphertexts."""

import math

import keras
import numpy as np

import primitives as P
from heras.deployment import load_prepared, save_prepared
from heras.layers import Dense, Input, Poly, Square
from heras.models import Sequential
from heras.models.preparation import ckks_amplification, ckks_error_bound


def float_forward(model, x):
    """The float64 model: every layer's call on numpy arrays."""
    for layer in model.layers:
        x = layer.call(x)
    return np.asarray(x, dtype=np.float64)


def test_ckks_dense_square_dense_meets_the_requested_precision(rng, tmp_path):
    keras.utils.set_random_seed(3)  # Glorot-uniform weights: l1-norms of rows ~8 and ~1.5
    model = Sequential([Input((64,)), Dense(16, kernel_initializer="glorot_uniform"), Square(),
                        Dense(4, kernel_initializer="glorot_uniform")])
    for layer in (model.layers[0], model.layers[2]):
        layer.bias.assign(rng.uniform(-0.3, 0.3, size=layer.bias.shape))
    precision = 10
    plan = model.prepare_encryption("ckks", precision_bits=precision)
    params = plan.parameters
    bits = params.amplification_bits
    assert bits == math.ceil(math.log2(plan.amplification)) and bits >= 8   # the network amplifies errors ~2^10
    assert params.scale_bits >= precision + bits + 14
    assert plan.error_bound < 2.0 ** -precision
    text = str(plan) + "\n" + P.explain(params)
    assert f"amplification {bits}" in text and "proven |error|" in text

    x = rng.uniform(0, 1, size=(64, 64))
    client = P.Context(params)
    out = model.decrypt_outputs(client, model.predict(model.encrypt_inputs(client.public(), x)))
    error = np.max(np.abs(out - float_forward(model, x)))
    assert error < 2.0 ** -precision
    assert error <= plan.error_bound
    save_prepared(model, tmp_path / "deploy")   # the proven bound travels with the plan
    assert str(load_prepared(tmp_path / "deploy").encryption_plan) == str(plan)


def test_error_bound_of_dense_square_dense_by_hand():
    model = Sequential([Input((3,)), Dense(2), Square(), Dense(1)])
    w1, b1 = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 1.0]]), np.array([0.25, 0.0])
    w2, b2 = np.array([[3.0], [-0.5]]), np.array([1.0])
    model.layers[0].set_weights([w1, b1])
    model.layers[2].set_weights([w2, b2])
    d, r = 2.0 ** -30, 2.0 ** -40
    # dense 1: sum |w| d + (sum of bounds under non-zero weights) r + d + r (bias)
    bound1 = np.abs(w1).sum(0) + np.abs(b1)                     # [2.75, 3]
    error1 = np.abs(w1).sum(0) * d + np.array([3, 2]) * r + d + np.array([r, 0])
    error2 = 2 * bound1 * error1 + error1 ** 2 + d               # square
    error3 = np.abs(w2).T @ error2 + (bound1 ** 2).sum() * r + d + r
    assert math.isclose(ckks_error_bound(model, (3,), 1.0, d, r), float(error3[0]), rel_tol=1e-12)
    # to first order, in units of one op's error (encodings at 2^-14 of it)
    amplification = ckks_amplification(model, (3,), 1.0)
    assert math.isclose(amplification, ckks_error_bound(model, (3,), 1.0, 1e-60, 1e-60 * 2 ** -14) / 1e-60)


def test_poly_error_follows_the_encrypted_powers():
    model = Sequential([Input((2,)), Poly([0.5, 0.0, 0.25, 0.125])])
    d, r = 2.0 ** -30, 2.0 ** -40
    b, e = 2.0, 2.0 ** -29
    e2 = 2 * b * e + e * e + d                                    # x^2 = square(x)
    e3 = b * b * e + b * e2 + e2 * e + d                          # x^3 = x^2 * x
    expected = (0.25 * e2 + b ** 2 * r + d) + (0.125 * e3 + b ** 3 * r + d) + r
    error_model = P.bound_tensor.CKKSErrorModel(d, r)
    out = model.layers[0].call(P.BoundTensor(b, shape=(2,), error=e, error_model=error_model))
    np.testing.assert_allclose(out.error, expected, rtol=1e-12)
    np.testing.assert_allclose(out.bound, 0.5 + 0.25 * 4 + 0.125 * 8)
