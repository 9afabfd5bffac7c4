"""BFV runs polynomial activations: integer coefficients at the input's scale, exact oracle."""

import keras
import numpy as np
import pytest

import heras
import primitives as P
from heras.activations import polynomial_depth
from heras.deployment import load_prepared, save_prepared
from heras.layers import Activation, Dense, Input, Poly
from heras.models import Sequential
from heras.models.preparation import poly_integers


def exact(values):
    return np.asarray(values).astype(object)


@pytest.mark.parametrize("layers", [
    [Dense(4), Poly([0.1, 0.5, 0.25]), Dense(2)],
    [Dense(3, activation="poly"), Dense(2)],
    [Dense(3), Activation({"poly": [0.0, 1.0, -0.2, 0.05]}), Dense(2)],   # degree 3: past 2^62
], ids=["Poly", "Dense-activation", "Activation-degree-3"])
def test_bfv_poly_matches_the_discretised_model_bit_for_bit(layers, rng):
    keras.utils.set_random_seed(0)
    model = Sequential([Input((5,))] + layers)
    x = rng.uniform(0, 1, size=(6, 5))
    plan = model.prepare_encryption("bfv", calibration=x)
    client = P.Context(plan.parameters)
    encrypted = model.predict(model.encrypt_inputs(client.public(), x))
    discretised = model.predict_discretized(x)
    assert exact(P.decrypt(client, encrypted)).tolist() == exact(discretised).tolist()
    # the bound is proven: every intermediate of the integer model stays within it
    out = exact(plan.quantize(x))
    for layer in model.layers:
        out = layer.call(out)
        assert max(abs(v) for v in out.ravel()) <= plan.max_value
    float_out = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(np.asarray(discretised, dtype=float) / plan.output_scale, float_out,
                               atol=0.05 * np.abs(float_out).max())


def test_poly_integers_scale_each_power():
    coefficients, scale = [0.25, 0.5, 0.125], 300.0
    integers, out_scale, factor = poly_integers(coefficients, scale, weight_bits=8)
    q = 127 / 0.5
    assert integers.tolist() == [round(0.25 * q * scale ** 2), round(0.5 * q * scale), round(0.125 * q)]
    assert out_scale == q * scale ** 2 and factor == round(0.125 * q)   # x^2 is the deepest power
    x = np.arange(-600, 601)
    real = np.polyval(coefficients[::-1], x / scale)
    integer = sum(int(c) * x.astype(object) ** k for k, c in enumerate(integers.tolist()))
    np.testing.assert_allclose(np.asarray(integer, dtype=float) / out_scale, real, atol=4 / q)


def test_prepared_poly_survives_deployment_and_ckks_reuses_the_real_coefficients(rng, tmp_path):
    keras.utils.set_random_seed(4)
    model = Sequential([Input((4,)), Dense(3, activation={"poly": [0.1, 1.0, 0.5]}), Poly([0.0, 1.0, 0.25]), Dense(2)])
    x = rng.uniform(0, 1, size=(3, 4))
    model.prepare_encryption("bfv", calibration=x)
    expected = exact(model.predict_discretized(x)).tolist()
    save_prepared(model, tmp_path / "deploy")
    assert exact(load_prepared(tmp_path / "deploy").predict_discretized(x)).tolist() == expected
    plan = model.prepare_encryption("ckks", precision_bits=8)
    assert model.layers[0].heras_activation.integer_coefficients is None
    np.testing.assert_allclose(model.predict_discretized(x), model.predict(x, verbose=0), rtol=1e-5)
    assert plan.depth == 1 + 1 + 1 + 1 + 1 + 1   # dense, poly (x^2, coefficients), poly, dense


def test_a_shared_poly_activation_gets_coefficients_per_layer(rng):
    shared = heras.activations.get({"poly": [0.0, 1.0, 0.5]})
    keras.utils.set_random_seed(5)
    model = Sequential([Input((3,)), Dense(3, activation=shared), Dense(3, activation=shared), Dense(1)])
    x = rng.uniform(0, 1, size=(4, 3))
    model.prepare_encryption("bfv", calibration=x)
    first, second = (layer.heras_activation.integer_coefficients for layer in model.layers[:2])
    assert first != second and shared.integer_coefficients is None


def test_polynomial_depth_follows_the_encrypted_powers():
    assert [polynomial_depth(d) for d in range(1, 9)] == [0, 1, 2, 2, 3, 3, 4, 4]
    assert Poly([0.0] * 7 + [1.0]).bfv_depth == 4   # x^7 = x^6 * x, x^6 = (x^3)^2, x^3 = x^2 * x
