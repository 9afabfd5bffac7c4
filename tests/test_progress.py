"""One progress display for an encrypted forward pass, across worker processes."""

import keras
import numpy as np
import pytest

import primitives as P
from experiments.progress import LINES, ForwardProgress, display_mode
from heras.layers import Conv2D, Dense, Flatten, Input, Square
from heras.models import Sequential, streaming


def _prepared(layers, x, **kwargs):
    keras.utils.set_random_seed(0)
    model = Sequential(layers)
    model.prepare_encryption("bfv", calibration=x, **kwargs)
    return model


def _forward_lines(model, query, monkeypatch, workers, block_features):
    monkeypatch.setenv("SEALION_WORKERS", str(workers))
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, str(block_features))
    lines = []
    with ForwardProgress("forward", LINES, lines.append):
        out = model.encrypted_forward(query)
    return out, lines


def _assert_one_line_per_step(lines):
    total = int(lines[0].split("/")[1].split()[0])
    assert len(lines) == total > 0
    for k, line in enumerate(lines, start=1):
        assert line.startswith(f"forward: step {k}/{total} (") and "s elapsed" in line
        assert "\r" not in line and "\x1b" not in line and "\n" not in line
    assert "left" in lines[0] and "left" not in lines[-1]


def test_crt_primes_computed_in_a_worker_are_counted(bfv_context, monkeypatch, rng):
    """2 CRT primes on 2 processes: the worker's layers are lines of the same display."""
    model = Sequential([Input((4,)), Dense(3), Square(), Dense(2)])
    for layer in (model.layers[0], model.layers[2]):  # small integers: encryptable as they are
        kernel, bias = (rng.integers(-1, 2, size=w.shape) for w in layer.get_weights())
        layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
        layer.set_encryption_weights(kernel=kernel, bias=bias)
    x = rng.integers(0, 4, size=(5, 4))
    assert len(bfv_context.components) == 2
    out, lines = _forward_lines(model, P.encrypt(bfv_context.public(), x, bound=3), monkeypatch, 2, 0)
    np.testing.assert_array_equal(P.decrypt(bfv_context, out), model.predict(x.astype("float32"), verbose=0))
    _assert_one_line_per_step(lines)
    assert len(lines) == 2 * 3
    assert sorted(line.split("(")[1].split(")")[0] for line in lines) == sorted(2 * [layer.name for layer in model.layers])


@pytest.mark.slow
def test_steps_of_worker_processes_reach_one_display(monkeypatch, rng):
    """3 CRT primes on 2 processes, both ways heras spreads them: every layer (or streamed
    block) of every prime is one line, whichever process computed it."""
    x = rng.uniform(0, 1, size=(5, 7, 7, 1))
    model = _prepared([Input((7, 7, 1)), Conv2D(4, 3), Square(), Flatten(), Dense(3), Square(), Dense(2)], x,
                      input_bits=6, weight_bits=6)
    client = P.Context(model.encryption_plan.parameters)
    assert len(client.components) == 3
    query = model.encrypt_inputs(client.public(), x)
    expected = model.predict_discretized(x)
    # layer by layer: map_parts gives the worker 1 prime, this process 2; 6 layers each
    out, lines = _forward_lines(model, query, monkeypatch, workers=2, block_features=0)
    np.testing.assert_array_equal(P.decrypt(client, out), expected)
    _assert_one_line_per_step(lines)
    assert len(lines) == 3 * 6
    # streamed: one prime whole per process; the third's 5 row bands shared (3 here, 2 there),
    # its last two layers finished here: 2 * (5 bands + 2 layers) + 5 bands + 2 layers
    out, lines = _forward_lines(model, query, monkeypatch, workers=2, block_features=20)
    np.testing.assert_array_equal(P.decrypt(client, out), expected)
    _assert_one_line_per_step(lines)
    assert len(lines) == 3 * (5 + 2)
    assert sum("block" in line for line in lines) == 3 * 5


def test_blocks_computed_only_in_a_worker_are_counted(monkeypatch, rng):
    x = rng.uniform(0, 1, size=(6, 8))
    model = _prepared([Input((8,)), Dense(12), Square(), Dense(3)], x, input_bits=4, weight_bits=4)
    client = P.Context(model.encryption_plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    out, lines = _forward_lines(model, query, monkeypatch, workers=2, block_features=4)
    np.testing.assert_array_equal(P.decrypt(client, out), model.predict_discretized(x))
    _assert_one_line_per_step(lines)
    assert len(lines) == 3  # 3 blocks of 4 units: 2 here, 1 in the worker


def test_no_listener_no_display_and_modes(capsys):
    P.progress.report("step", "nobody listens")  # a no-op
    assert capsys.readouterr() == ("", "")
    assert display_mode(2) == LINES and display_mode(None) == LINES  # pytest's stdout is no terminal
    with pytest.raises(ValueError, match="verbose"):
        display_mode(3)
    seen = []
    with ForwardProgress("x", 0, seen.append) as display:
        P.progress.report("start", 2)
        P.progress.report("step", "a")
    assert seen == [] and display.done == 1 and display.total == 2
