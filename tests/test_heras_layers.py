"""heras layers and models: plain vs encrypted agreement, configs, saving, clear refusals."""

import keras
import numpy as np
import pytest

import heras
import primitives as P
from heras.layers import (Activation, Add, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                          Dropout, Flatten, Input, Poly, Reshape, Square, SumPooling2D)
from heras.models import Sequential, load_model


def integer_weights(model, rng, low=-3, high=4):
    """Replace every weight by small integers (as floats): BFV then matches float32 exactly."""
    for layer in model.layers:
        layer.set_weights([rng.integers(low, high, size=w.shape).astype("float32") for w in layer.get_weights()])


def test_bfv_cnn_matches_the_discretised_model_exactly(rng):
    keras.utils.set_random_seed(0)
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3, padding="same"), Square(), AveragePooling2D(2),
                        Flatten(), Dropout(0.5), Dense(3), Reshape((3, 1))])
    x = rng.uniform(0, 1, size=(5, 6, 6, 1))
    plan = model.prepare_encryption("bfv", calibration=x, input_bits=8, weight_bits=8)
    client = P.Context(plan.parameters)
    encrypted = model.predict(model.encrypt_inputs(client.public(), x))
    assert isinstance(encrypted, P.EncryptedTensor)
    discretised = model.predict_discretized(x)
    np.testing.assert_array_equal(P.decrypt(client, encrypted), discretised)
    # the integer model approximates the float one (8-bit weights and inputs)
    float_out = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(np.asarray(discretised, dtype=float) / plan.output_scale, float_out,
                               atol=0.05 * np.abs(float_out).max())
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    assert any("BFV plan: depth 1" in line for line in lines)   # the summary shows the plan


def test_bfv_hand_set_integer_weights_run_exactly(bfv_context, rng):
    model = Sequential([Input((4,)), Dense(3), Square(), Dense(2)])
    integer_weights(model, rng, -1, 2)   # small weights: the test context is n=4096, depth 1
    for layer in (model.layers[0], model.layers[2]):
        layer.set_encryption_weights(kernel=np.asarray(layer.kernel).astype(int), bias=np.asarray(layer.bias).astype(int))
    x = rng.integers(0, 4, size=(5, 4))
    out = P.decrypt(bfv_context, model.encrypted_forward(P.encrypt(bfv_context.public(), x, bound=3)))
    np.testing.assert_array_equal(out, model.predict(x.astype("float32"), verbose=0))


def test_encrypted_methods_name_the_step_to_run_first(bfv_context):
    model = Sequential([Input((3,)), Dense(2)])
    with pytest.raises(RuntimeError, match="prepare_encryption"):
        model.predict(P.encrypt(bfv_context, np.ones((1, 3), dtype=int)))
    with pytest.raises(RuntimeError, match="prepare_encryption"):
        model.evaluate(np.ones((1, 3)), np.zeros(1), encrypted=True)


def test_ckks_model_matches_within_tolerance(ckks_context, rng):
    """Three levels: dense, square, dense (sum pooling costs none); then a degree-2 Poly (two)."""
    model = Sequential([Input((4, 4, 2)), SumPooling2D(2), Flatten(), Dense(6), Square(), Dense(3)])
    x = rng.uniform(0, 1, size=(7, 4, 4, 2))
    out = P.decrypt(ckks_context, model.encrypted_forward(P.encrypt(ckks_context, x)))
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-3)
    poly = Sequential([Input((3,)), Poly([0.1, 0.5, 0.25])])
    v = rng.uniform(-2, 2, size=(5, 3))
    np.testing.assert_allclose(P.decrypt(ckks_context, poly.encrypted_forward(P.encrypt(ckks_context, v))),
                               poly.predict(v, verbose=0), atol=1e-3)


def test_batch_normalization_and_activation_layers_encrypted(ckks_context, rng):
    model = Sequential([Input((4, 4, 2)), AveragePooling2D(2), BatchNormalization(), Activation("square")])
    model.layers[1].set_weights([rng.uniform(0.5, 2, 2), rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2),
                                 rng.uniform(0.5, 2, 2)])
    x = rng.uniform(-1, 1, size=(4, 4, 4, 2))
    out = P.decrypt(ckks_context, model.encrypted_forward(P.encrypt(ckks_context, x)))
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-3)


def test_residual_add_layer_plain_and_encrypted(bfv_context, rng):
    x = rng.integers(-5, 5, size=(3, 4))
    add = Add()
    np.testing.assert_array_equal(P.decrypt(bfv_context, add.call([P.encrypt(bfv_context, x), P.square(P.encrypt(bfv_context, x))])),
                                  x + x ** 2)


def test_cost_summary_of_dnn30():
    model = Sequential([Input((784,)), Dense(30), Square(), Dense(10)])
    rows = model.encryption_costs()
    assert [r["activations"] for r in rows] == [0, 30, 0]
    assert (rows[-1]["bfv_depth"], rows[-1]["ckks_depth"]) == (1, 3)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Total activations (ciphertext multiplications per sample): 30" in line for line in lines)


@pytest.mark.parametrize("layers, message", [
    ([Dense(4, activation="relu")], "activation 'relu'.*Square or heras.layers.Poly"),
    ([keras.layers.ReLU()], "Square or heras.layers.Poly"),
])
def test_layers_without_encrypted_form_are_refused(bfv_context, layers, message):
    model = Sequential([Input((3,))] + layers)
    x = P.encrypt(bfv_context, np.ones((2, 3), dtype=int))
    with pytest.raises(NotImplementedError, match=message):
        model.encrypted_forward(x)


def test_max_pooling_is_refused_with_the_alternative(bfv_context):
    model = Sequential([Input((4, 4, 1)), keras.layers.MaxPooling2D(2)])
    with pytest.raises(NotImplementedError, match="AveragePooling2D or SumPooling2D"):
        model.encrypted_forward(P.encrypt(bfv_context, np.ones((1, 4, 4, 1), dtype=int)))


def test_encrypted_input_shape_is_checked(bfv_context):
    model = Sequential([Input((3,)), Dense(2)])
    with pytest.raises(P.ShapeError, match=r"per-sample shape \(3,\)"):
        model.encrypted_forward(P.encrypt(bfv_context, np.ones((2, 4), dtype=int)))


def test_configs_and_saving_round_trip(tmp_path, rng):
    model = Sequential([Input((4, 4, 1)), Conv2D(2, 3, activation="square"), Flatten(),
                        Dense(3, activation={"poly": [0.0, 1.0, 0.5]}), Poly(trainable_coefficients=True)])
    x = rng.uniform(0, 1, size=(2, 4, 4, 1)).astype("float32")
    for layer in model.layers:
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    path = tmp_path / "model.keras"
    model.save(path)
    restored = load_model(path)
    assert isinstance(restored, Sequential)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_trainable_poly_learns_its_coefficients():
    layer = Poly([0.0, 0.0, 0.0], trainable_coefficients=True)
    model = Sequential([Input((1,)), layer])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = np.linspace(-1, 1, 64).reshape(-1, 1).astype("float32")
    model.fit(x, 0.5 + 2 * x ** 2, epochs=200, verbose=0)
    np.testing.assert_allclose(np.asarray(layer.coefficients), [0.5, 0.0, 2.0], atol=0.05)


def test_datasets_find_files_through_the_setting(tmp_path, monkeypatch):
    arrays = {k: np.zeros((2, 28, 28) if k.startswith("x") else (2,), dtype=np.uint8)
              for k in ("x_train", "y_train", "x_test", "y_test")}
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv("SEALION_DATA", str(tmp_path))
    (x_train, _), (x_test, _) = heras.datasets.mnist.load_data()
    assert x_train.shape == (2, 28, 28) and x_test.shape == (2, 28, 28)
    monkeypatch.setenv("SEALION_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match="SEALION_DATA"):
        heras.datasets.fashion_mnist.load_data(download=False)


def test_discretised_oracle_is_exact_beyond_int64(rng):
    """Two squares of 8-bit values exceed 2^63: the oracle must switch to exact Python ints."""
    keras.utils.set_random_seed(1)
    model = Sequential([Input((4,)), Dense(4), Square(), Dense(4), Square(), Dense(2)])
    x = rng.uniform(0, 1, size=(3, 4))
    plan = model.prepare_encryption("bfv", calibration=x)
    assert plan.max_value >= 2 ** 63 and len(plan.parameters.plain_moduli) >= 2
    assert max(plan.parameters.plain_moduli) < 2 ** 31   # so the fast residue oracle runs
    out = model.predict_discretized(x)          # per CRT prime in int64, recombined
    assert out.dtype == object
    python_ints = plan.quantize(x).astype(object)
    for layer in model.layers:
        python_ints = layer.call(python_ints)
    assert out.tolist() == python_ints.tolist()  # the slow exact path agrees
    client = P.Context(plan.parameters)
    np.testing.assert_array_equal(P.decrypt(client, model.predict(model.encrypt_inputs(client.public(), x))).astype(object), out)
    report = model.evaluate(x, np.argmax(np.asarray(out, dtype=float), axis=1), encrypted=True, context=client)
    assert report["exact"] is True and report["agreement"] == 1.0 and report["accuracy"] == 1.0
    assert report["samples"] == 3 and report["latency_s"] > 0 and report["throughput_per_hour"] > 0


def test_activation_inside_dense_counts_its_levels():
    model = Sequential([Input((8,)), Dense(4, activation="square"), Dense(3, activation="poly"), Activation("poly")])
    rows = model.encryption_costs()
    assert [r["ckks_depth"] for r in rows] == [2, 2 + 1 + 2, 5 + 2]
    assert [r["bfv_depth"] for r in rows] == [1, 2, 3]


def test_functional_model_with_residual_add_runs_encrypted(ckks_context, rng, tmp_path):
    from heras.models import Model
    inputs = Input((6,))
    hidden = Dense(6)(inputs)
    outputs = Dense(2)(Add()([hidden, Square()(hidden)]))
    model = Model(inputs, outputs)
    x = rng.uniform(-1, 1, size=(5, 6))
    out = P.decrypt(ckks_context, model.encrypted_forward(P.encrypt(ckks_context, x)))
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-3)
    model.save(tmp_path / "residual.keras")
    np.testing.assert_allclose(load_model(tmp_path / "residual.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)


def test_bfv_folds_batch_normalization_into_the_previous_layer(rng):
    keras.utils.set_random_seed(2)
    model = Sequential([Input((6,)), Dense(4), BatchNormalization(), Square(), Dense(2)])
    model.layers[1].set_weights([rng.uniform(0.5, 2, 4), rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4),
                                 rng.uniform(0.5, 2, 4)])
    x = rng.uniform(0, 1, size=(6, 6))
    plan = model.prepare_encryption("bfv", calibration=x)
    assert model.layers[1].folded
    client = P.Context(plan.parameters)
    out = P.decrypt(client, model.predict(model.encrypt_inputs(client.public(), x)))
    np.testing.assert_array_equal(out, model.predict_discretized(x))
    float_out = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(out / plan.output_scale, float_out, atol=0.05 * np.abs(float_out).max())
