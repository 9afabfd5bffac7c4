"""Functional heras Models (residual Add) prepare, encrypt and evaluate like Sequential ones."""

import math

import keras
import numpy as np
import pytest

import primitives as P
from heras.deployment import load_prepared, save_prepared
from heras.layers import Add, AveragePooling2D, Conv2D, Dense, Flatten, Input, Square
from heras.models import Model
from heras.models.preparation import path_depth


def residual(seed=0):
    """x -> h = Dense(6) -> Dense(3)(h + h^2): the square's branch is one product deeper."""
    keras.utils.set_random_seed(seed)
    inputs = Input((5,))
    hidden = Dense(6, kernel_initializer="glorot_uniform")(inputs)
    return Model(inputs, Dense(3, kernel_initializer="glorot_uniform")(Add()([hidden, Square()(hidden)])))


def test_depth_is_the_longest_path_not_the_sum_of_layers():
    model = residual()
    assert path_depth(model, "bfv") == 1 and path_depth(model, "ckks") == 3
    rows = model.encryption_costs()
    assert [r["type"] for r in rows] == ["Dense", "Square", "Add", "Dense"]
    assert [r["bfv_depth"] for r in rows] == [0, 1, 1, 1] and rows[1]["activations"] == 6
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    assert any("Multiplicative depth: BFV 1 (ciphertext products), CKKS 3" in line for line in lines)


def test_ckks_functional_model_meets_its_precision_end_to_end(rng):
    model = residual(1)
    x = rng.uniform(0, 1, size=(8, 5))
    plan = model.prepare_encryption("ckks", precision_bits=12)
    assert plan.depth == 3 and plan.error_bound < 2.0 ** -12
    client = P.Context(plan.parameters)
    out = model.decrypt_outputs(client, model.predict(model.encrypt_inputs(client.public(), x)))
    reference = model.predict_discretized(x)
    np.testing.assert_allclose(reference, model.predict(x, verbose=0), atol=1e-5)   # float64 vs Keras
    assert np.max(np.abs(out - reference)) < 2.0 ** -12
    report = model.evaluate(x, reference.argmax(axis=1), encrypted=True, context=client)
    assert report["agreement"] == 1.0 and report["max_error"] <= report["error_bound"] < 2.0 ** -12


def test_bfv_functional_model_matches_its_integer_model_bit_for_bit(rng, tmp_path):
    model = residual(2)
    x = rng.uniform(0, 1, size=(6, 5))
    plan = model.prepare_encryption("bfv", calibration=x)
    add = model.layers[3]
    assert isinstance(add, Add) and add.input_factors[1] == 1
    factor = add.input_factors[0]
    assert factor > 1 and factor & (factor - 1) == 0    # h joins h^2 times a power of two
    assert math.log2(plan.input_scale).is_integer()      # power-of-two scales throughout
    client = P.Context(plan.parameters)
    out = P.decrypt(client, model.predict(model.encrypt_inputs(client.public(), x)))
    discretised = model.predict_discretized(x)
    assert np.asarray(out).astype(object).tolist() == np.asarray(discretised).astype(object).tolist()
    float_out = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(np.asarray(discretised, dtype=float) / plan.output_scale, float_out,
                               atol=0.05 * np.abs(float_out).max())
    report = model.evaluate(x, float_out.argmax(axis=1), encrypted=True, context=client)
    assert report["exact"] is True
    save_prepared(model, tmp_path / "deploy")
    served = load_prepared(tmp_path / "deploy")
    assert served.layers[3].input_factors == add.input_factors
    assert np.asarray(served.predict_discretized(x)).tolist() == np.asarray(discretised).tolist()
    model.prepare_encryption("ckks", precision_bits=8)   # CKKS matches scales itself
    assert add.input_factors is None


def test_bfv_add_of_scales_without_an_integer_ratio_names_the_fix():
    keras.utils.set_random_seed(3)
    inputs = Input((6, 6, 1))
    features = Conv2D(1, 1)(inputs)
    pooled = AveragePooling2D(3)(features)                # area 9: scale times 9
    other = AveragePooling2D(2, strides=3)(features)      # area 4: scale times 4
    model = Model(inputs, Dense(2)(Flatten()(Add()([pooled, other]))))
    with pytest.raises(NotImplementedError, match=r"not exact integers.*power of two.*ckks"):
        model.prepare_encryption("bfv")
    assert math.isfinite(model.prepare_encryption("ckks", precision_bits=8).error_bound)
