"""applications/sparsifier: the L0 gate (hard concrete), its schedule, YAML and saving, the sweep demo."""

import json
import math
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import primitives as P
from applications.sparsifier import L0Gate, L0Schedule
from applications.sparsifier import layers as l0
from applications.sparsifier.schedule import scale_at
from experiments import load_config, parse_config
from experiments.building import build_model, layer_from_spec
from heras.deployment import load_prepared, save_prepared
from heras.layers import Conv2D, Dense, Flatten, Input, Square
from heras.models import Sequential

ROOT = Path(__file__).resolve().parent.parent


def _gated(gate_kwargs=None):
    keras.utils.set_random_seed(0)
    return Sequential([Input((6, 6, 1)), Conv2D(3, 3, strides=2, padding="same"), L0Gate(**(gate_kwargs or {})),
                       Square(), Flatten(), Dense(4)])


def _set_log_alpha(gate, values):
    gate.scaled_log_alpha.assign(np.asarray(values, dtype="float32") / gate.gate_speed)


def test_inference_gates_follow_hard_concrete():
    gate = _gated().layers[1]
    log_alpha = np.linspace(-4, 4, 27).reshape(3, 3, 3)
    _set_log_alpha(gate, log_alpha)
    z = gate.gate_values()
    expected = np.clip(1 / (1 + np.exp(-log_alpha)) * (l0.ZETA - l0.GAMMA) + l0.GAMMA, 0, 1)
    np.testing.assert_allclose(z, expected, atol=1e-6)
    assert np.all(z[log_alpha <= -math.log(11) - 1e-3] == 0) and np.all(z[log_alpha >= math.log(11) + 1e-3] == 1)
    x = np.random.default_rng(0).uniform(0, 1, size=(2, 3, 3, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gate(x, training=False)), x * z, rtol=1e-5, atol=1e-6)
    # the expected L0 norm: sum sigmoid(log_alpha - beta log(-gamma/zeta))
    expected_l0 = np.sum(1 / (1 + np.exp(-(log_alpha - l0.BETA * math.log(-l0.GAMMA / l0.ZETA)))))
    assert float(gate.expected_active()) == pytest.approx(expected_l0, rel=1e-5)


def test_training_samples_gates_in_0_1_and_adds_the_scheduled_penalty():
    gate = _gated({"l0_lambda": 0.01}).layers[1]
    _set_log_alpha(gate, np.zeros((3, 3, 3)))
    x = np.ones((64, 3, 3, 3), dtype="float32")
    z = keras.ops.convert_to_numpy(gate(x, training=True))
    assert z.min() >= 0 and z.max() <= 1 and 0 < z.std() and np.any(z == 0) and np.any(z == 1)
    assert len(gate.losses) == 1
    assert float(gate.losses[0]) == pytest.approx(0.01 * float(gate.expected_active()), rel=1e-5)
    gate.penalty_scale.assign(0.0)
    gate(x, training=True)
    assert float(gate.losses[0]) == 0.0
    per_channel = _gated({"per_channel": True}).layers[1]
    assert tuple(per_channel.scaled_log_alpha.shape) == (3,) and per_channel.positions_per_gate == 9
    assert scale_at(0.5, 1, 2) == 0 and scale_at(2.0, 1, 2) == 0.5 and scale_at(9, 1, 2) == 1 and scale_at(1, 1, 0) == 1


def test_bad_options_name_the_argument():
    with pytest.raises(ValueError, match="l0_lambda"):
        L0Gate(l0_lambda=-1)
    with pytest.raises(ValueError, match="gate_speed"):
        L0Gate(gate_speed=0)


def test_fit_adds_the_schedule_and_prunes(rng):
    """heras' fit adds L0Schedule (the layer asks for it); a strong penalty closes gates."""
    model = _gated({"l0_lambda": 1.0, "warmup_epochs": 1, "ramp_epochs": 0, "gate_speed": 100.0,
                    "initial_log_alpha": 0.0})
    model.compile(loss="sparse_categorical_crossentropy")
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(model.layers[1].penalty_scale.numpy()))
    x, y = rng.uniform(0, 1, size=(64, 6, 6, 1)).astype("float32"), rng.integers(0, 4, 64)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[Watch()])
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert np.count_nonzero(model.layers[1].gate_values()) < 27


def test_yaml_names_the_gate_and_the_model_saves_and_loads(tmp_path, rng):
    assert isinstance(layer_from_spec({"L0Gate": {"l0_lambda": 0.001}}, 0), L0Gate)
    assert isinstance(layer_from_spec({"class_name": "sparsifier>L0Gate", "config": {}}, 0), L0Gate)
    config = load_config(ROOT / "configs" / "mnist_cnn16_l0.yaml")
    model = build_model(config, (28, 28, 1))
    assert sum(isinstance(layer, L0Gate) for layer in model.layers) == 2
    assert sum(row["activations"] for row in model.encryption_costs()) == 3236   # gates start open
    small = _gated()
    _set_log_alpha(small.layers[1], rng.normal(0, 3, size=(3, 3, 3)))
    small.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.layers[1].gate_values(), small.layers[1].gate_values())
    assert loaded.layers[1].get_config() == small.layers[1].get_config()


def test_prepared_gated_model_deploys_and_stays_exact(tmp_path, rng):
    """save_prepared / load_prepared keep the folded gates: the server's pruned model equals
    the developer's discretised model bit for bit."""
    model = _gated()
    z_log_alpha = rng.normal(0, 3, size=(3, 3, 3))
    _set_log_alpha(model.layers[1], z_log_alpha)
    x = rng.uniform(0, 1, size=(3, 6, 6, 1))
    plan = model.prepare_encryption("bfv", calibration=x, input_bits=3, weight_bits=4)
    save_prepared(model, tmp_path / "deploy")
    server_model = load_prepared(tmp_path / "deploy")
    assert server_model.layers[1].gates_folded
    assert server_model.encryption_costs()[2]["activations"] == model.encryption_costs()[2]["activations"] < 27
    client = P.Context(plan.parameters)
    out = server_model.predict(server_model.encrypt_inputs(client.public(), x))
    np.testing.assert_array_equal(P.decrypt(client, out), model.predict_discretized(x))


def test_sweep_help_and_quick(tmp_path):
    script = ROOT / "applications" / "sparsifier" / "sweep.py"
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "--quick" in shown.stdout and "--lambdas" in shown.stdout
    run = subprocess.run([sys.executable, str(script), "--quick", "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads((tmp_path / "sweep.json").read_text())["rows"]
    assert [r["l0_lambda"] for r in rows] == [0.0, 0.01]
    assert all(r["exact"] is True for r in rows)                     # BFV equals the pruned discretised model
    assert rows[0]["activations"] == 64 and rows[1]["activations"] < 64
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 0.01 |" in (tmp_path / "sweep.md").read_text()


@pytest.mark.slow
def test_mnist_cnn16_l0_runs_exact_and_counts_computed_activations(tmp_path):
    """Two epochs of the shipped config, 512 encrypted test images: pruned, exact, counted."""
    from experiments import run
    config = load_config(ROOT / "configs" / "mnist_cnn16_l0.yaml",
                         ["training.epochs=3", "evaluation.samples=512", "evaluation.batch_size=512"])
    results = run(config, output=tmp_path / "run", log=lambda *_: None, verbose=0)
    assert results["exact"] is True and results["activations"] < 3236
    assert results["encrypted_accuracy"] > 0.9
