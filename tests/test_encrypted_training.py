"""Encrypted training (CKKS): SGD on ciphertexts equals the plaintext SGD, refreshes are masked,
steps beyond the levels are refused, and unsupported models are refused before anything runs."""

import keras
import numpy as np
import pytest

import primitives as P
from heras.layers import Dense, Input, Poly, Square
from heras.models import Sequential
from heras.models import encrypted_training as ET
from primitives.backends.encrypted.refresh import KeyHolder
from primitives.training import plan_training

TOLERANCE = 1e-5  # relative weight error: CKKS errors ~2^-30 per op, the refresh's masked decryption ~1e-7


def tiny_model(seed=0, activation=None):
    keras.utils.set_random_seed(seed)
    return Sequential([Input((3,)), Dense(4), activation or Square(), Dense(2)])


@pytest.fixture(scope="module")
def tiny():
    """12 samples in minibatches of 8 and 4 (padding), keys for 1 step per refresh."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 3)), rng.integers(0, 2, size=12)
    model = tiny_model()
    plan = ET.training_plan(model, 8, samples=12, epochs=2, trial=False)
    context = P.Context(plan.parameters)
    enc_x, enc_y = ET.encrypt_training_data(model, context, x, y, 8)
    return x, y, plan, context, enc_x, enc_y


@pytest.fixture(scope="module")
def trained(tiny):
    """Two epochs (4 steps, 3 refreshes through a callable on bytes, its views kept)."""
    _, _, _, context, enc_x, enc_y = tiny
    model, holder = tiny_model(), KeyHolder(context, keep_views=True)
    history = model.fit(enc_x, enc_y, epochs=2, batch_size=8, learning_rate=0.3, key_holder=holder.__call__,
                        verbose=0, seed=1)
    return model, holder, history


def test_tiny_network_trains_encrypted_like_plaintext(tiny, trained):
    x, y, plan, context, enc_x, enc_y = tiny
    model, _, history = trained
    reference, _ = ET.plaintext_fit(tiny_model(), x, y, epochs=2, batch_size=8, learning_rate=0.3)
    assert not enc_x.context.has_secret_key and not model.encrypted_weights.context.has_secret_key
    assert history["steps"] == 4 and history["refreshes"] == 3 == plan.refreshes_needed
    assert history["refresh_bytes"] > 0
    counts = history["operations"]
    assert (counts["ct_ct"], counts["rotations"]) == (4 * plan.ct_ct_multiplications, 4 * plan.rotations)
    model.decrypt_weights(context)
    error = model.decrypted_weights.max_relative_error(reference)
    assert error < TOLERANCE, error
    kernel = model.layers[0].get_weights()[0]
    np.testing.assert_allclose(kernel, reference.W1, rtol=0, atol=1e-5)
    assert np.abs(reference.W1 - ET.initial_weights(tiny_model()).W1).max() > 1e-3  # it did train


def test_poly_activation_step_matches_plaintext(tiny):
    x, y, _, _, _, _ = tiny
    model = tiny_model(activation=Poly([0.25, 0.5, 0.125]))
    plan = ET.training_plan(model, 8, trial=False)
    assert plan.levels_per_step == 8
    context = P.Context(plan.parameters)
    enc_x, enc_y = ET.encrypt_training_data(model, context, x[:8], y[:8], 8)
    reference, _ = ET.plaintext_fit(model, x[:8], y[:8], epochs=1, batch_size=8, learning_rate=0.3)
    model.fit(enc_x, enc_y, epochs=1, learning_rate=0.3, verbose=0)
    assert model.decrypt_weights(context).decrypted_weights.max_relative_error(reference) < TOLERANCE


def test_step_beyond_the_levels_without_key_holder_is_refused(tiny):
    _, _, _, _, enc_x, enc_y = tiny
    model = tiny_model()
    with pytest.raises(P.DepthExhaustedError, match="key_holder"):
        model.fit(enc_x, enc_y, epochs=2, learning_rate=0.3, verbose=0)
    assert getattr(model, "encrypted_weights", None) is None  # refused before any step ran
    encrypted = ET.EncryptedMLP(enc_x.context, ET.initial_weights(model), enc_x.layout)
    encrypted.step(enc_x, enc_y, 0, 0.3)
    with pytest.raises(P.DepthExhaustedError, match="levels"):
        encrypted.step(enc_x, enc_y, 1, 0.3)


def test_masked_refresh_shows_the_key_holder_masked_values_only(tiny, trained):
    x, y, plan, _, _, _ = tiny
    _, holder, _ = trained
    assert len(holder.seen) == 3
    true = []  # the weights before each refresh, in the order they were sent (W1 rows, b1, W2 cols, b2)
    weights = ET.initial_weights(tiny_model())
    onehot = np.eye(2)[y]
    from primitives.training import plain_step
    for batch in ((0, 8), (8, 12), (0, 8)):
        plain_step(weights, x[slice(*batch)], onehot[slice(*batch)], 0.3)
        rows = list(weights.W1) + [weights.b1] + list(weights.W2.T) + [np.full(4, b) for b in weights.b2]
        true.append(np.array([np.pad(r, (0, plan.layout.H - len(r))) for r in rows]))
    radius = plan.weight_bound * 2.0 ** plan.mask_bits
    for view, weights_then in zip(holder.seen, true):
        offsets = view[:, :4] - weights_then[:, :4]
        assert np.all(np.abs(view[:, :4]) <= radius + plan.weight_bound)
        # the key holder sees weight + uniform mask: spread over the mask's range, not near the weights
        assert np.median(np.abs(offsets)) > radius / 8
        assert np.corrcoef(view[:, :4].ravel(), weights_then[:, :4].ravel())[0, 1] ** 2 < 0.5
    assert not np.allclose(holder.seen[0], holder.seen[2], atol=1.0)  # fresh masks every refresh


def test_unsupported_models_and_losses_are_refused_naming_the_alternative():
    with pytest.raises(NotImplementedError, match="Square"):
        ET.network_of(Sequential([Input((3,)), Dense(4, activation="relu"), Dense(2)]))
    with pytest.raises(NotImplementedError, match="exactly 2"):
        ET.network_of(Sequential([Input((3,)), Dense(4), Square(), Dense(4), Square(), Dense(2)]))
    with pytest.raises(NotImplementedError, match="degree 2"):
        ET.network_of(Sequential([Input((3,)), Dense(4), Poly([0, 1, 0, 1]), Dense(2)]))
    with pytest.raises(NotImplementedError, match="loss='mse'"):
        ET.check_loss("categorical_crossentropy")
    ET.check_loss("mse")


def test_plan_states_costs_and_a_zero_refresh_run():
    plan = plan_training(4, 8, 3, 64, steps_per_refresh=2, total_steps=2, trial=False)
    assert plan.steps_per_refresh == 2 and plan.refreshes_needed == 0
    assert plan.parameters.poly_modulus_degree == 32768
    text = str(plan)
    assert "zero refreshes" in text and "depth 7" in text and f"{plan.rotations} rotations" in text
    assert plan.ct_ct_multiplications == 4 + 1 + 3 + 3 + 1 + 3 + 4


def test_packed_tensors_round_trip_and_refuse_inference_decryption(tiny):
    x, _, _, context, enc_x, _ = tiny
    np.testing.assert_allclose(enc_x.decrypt_samples(context), x, atol=1e-6)
    with pytest.raises(TypeError, match="decrypt_samples"):
        P.decrypt(context, enc_x)
    keys = type(enc_x.rotation_keys).from_bytes(enc_x.rotation_keys.serialize(), context.public())
    assert keys.steps == enc_x.rotation_keys.steps


def test_bundled_iris():
    from heras.datasets import iris
    (x_train, y_train), (x_test, y_test) = iris.load_data(standardize=False)
    x = np.concatenate([x_train, x_test])
    assert x.shape == (150, 4) and len(y_test) == 30
    np.testing.assert_allclose(x.sum(axis=0), [876.5, 458.6, 563.7, 179.9], atol=1e-9)
    assert np.bincount(np.concatenate([y_train, y_test])).tolist() == [50, 50, 50]


def test_config_kind_parses_and_refuses_unknown_keys():
    from experiments.config import ConfigError, load_config
    config = load_config("configs/iris_encrypted_training.yaml")
    assert config.kind == "encrypted_training" and config.section("encrypted_training").mask_bits == 20
    with pytest.raises(ConfigError, match="mask_bit"):
        load_config("configs/iris_encrypted_training.yaml", ["encrypted_training.mask_bit=3"])


REQUIRED = ("encrypted_training_accuracy", "plaintext_training_accuracy", "max_weight_error", "refreshes",
            "train_time_s", "seconds_per_step")


def _run_iris(tmp_path, overrides=()):
    import json
    from experiments.config import load_config
    from experiments.encrypted_training import run
    config = load_config("configs/iris_encrypted_training.yaml", list(overrides))
    results = run(config, output=tmp_path / "iris", log=lambda *_: None, verbose=0)
    written = json.loads((tmp_path / "iris" / "results.json").read_text())
    assert all(key in written for key in REQUIRED)
    return results


def test_iris_config_runs_two_encrypted_steps(tmp_path):
    results = _run_iris(tmp_path, ["training.epochs=1"])
    assert results["steps"] == 2 and results["refreshes"] == 1 and results["refresh_bytes"] > 0
    assert results["max_weight_error"] < 1e-3


@pytest.mark.slow
def test_iris_acceptance(tmp_path):
    """Issue 13: within 2 points of plaintext SGD, weights within 1e-3 relative, >= 90% test accuracy."""
    results = _run_iris(tmp_path)
    assert results["max_weight_error"] < 1e-3
    assert abs(results["encrypted_training_accuracy"] - results["plaintext_training_accuracy"]) <= 0.02
    assert results["encrypted_training_accuracy"] >= 0.9
