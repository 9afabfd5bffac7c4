"""heras.models.extract: a one-output sub-model of a trained model, copied, that prepares and
runs encrypted like any other (BFV bit for bit against its discretised form)."""

import keras
import numpy as np
import pytest

import heras
import primitives as P
from heras.layers import Add, Dense, Flatten, Input, Square
from heras.models import Model, Sequential, extract


@pytest.fixture
def two_heads(rng):
    keras.utils.set_random_seed(0)
    inputs = Input((4, 4, 1))
    h = Square()(Dense(6)(Flatten()(inputs)))
    model = Model(inputs, [Dense(3, name="mean")(h), Dense(3, name="log_var")(h)])
    x = rng.uniform(0, 1, size=(32, 4, 4, 1)).astype("float32")
    model.compile(optimizer="adam", loss=["mse", "mse"])
    model.fit(x, [rng.normal(size=(32, 3)), rng.normal(size=(32, 3))], epochs=1, verbose=0)
    return model, x


def test_a_chain_becomes_a_sequential_copy_computing_that_head(two_heads):
    model, x = two_heads
    sub = extract(model, "mean")
    assert isinstance(sub, Sequential)
    assert [layer.__class__.__name__ for layer in sub.layers] == ["Flatten", "Dense", "Square", "Dense"]
    np.testing.assert_array_equal(sub.predict(x, verbose=0), model.predict(x, verbose=0)[0])
    # copies: changing the extracted weights leaves the original untouched
    before = model.get_layer("mean").get_weights()[0].copy()
    sub.layers[-1].set_weights([w * 0 for w in sub.layers[-1].get_weights()])
    np.testing.assert_array_equal(model.get_layer("mean").get_weights()[0], before)


def test_an_extracted_head_prepares_and_runs_encrypted_exactly(two_heads):
    model, x = two_heads
    sub = extract(model, model.get_layer("log_var"))
    plan = sub.prepare_encryption("bfv", calibration=x, input_bits=4, weight_bits=5)
    client = P.Context(plan.parameters)
    encrypted = sub.predict(sub.encrypt_inputs(client.public(), x[:8]))
    np.testing.assert_array_equal(P.decrypt(client, encrypted), sub.predict_discretized(x[:8]))
    assert model.encryption_plan is None  # the original is not prepared
    assert not hasattr(model.get_layer("log_var"), "_encryption_weights")


def test_a_graph_stays_a_functional_model(rng):
    keras.utils.set_random_seed(1)
    inputs = Input((5,))
    h = Dense(5)(inputs)
    merged = Add()([h, Square()(h)])
    model = Model(inputs, [Dense(2, name="out")(merged), Dense(1)(merged)])
    sub = extract(model, "out")
    assert isinstance(sub, Model) and not isinstance(sub, Sequential)
    x = rng.uniform(-1, 1, size=(16, 5)).astype("float32")
    np.testing.assert_allclose(sub.predict(x, verbose=0), model.predict(x, verbose=0)[0], rtol=0, atol=0)
    plan = sub.prepare_encryption("ckks", calibration=x, precision_bits=12)
    client = P.Context(plan.parameters)
    out = sub.decrypt_outputs(client, sub.predict(sub.encrypt_inputs(client.public(), x)))
    assert np.max(np.abs(out - sub.predict(x, verbose=0))) < 2.0 ** -12


def test_bad_requests_say_what_to_do(two_heads):
    model, _ = two_heads
    with pytest.raises(ValueError, match=r"no layer named 'z_mean'; its layers are \[.*'mean'"):
        extract(model, "z_mean")
    with pytest.raises(ValueError, match="is not a layer of model"):
        extract(model, Dense(2))
    with pytest.raises(ValueError, match="Build or fit it first"):
        extract(heras.models.Sequential([Dense(2)]), "dense")
