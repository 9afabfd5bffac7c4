"""Streamed segments (heras.models.streaming): block by block equals layer by layer, bit for bit."""

import keras
import numpy as np
import pytest

import primitives as P
from heras.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input,
                          Poly, Square)
from heras.models import Sequential, streaming


def _encrypted_both_ways(model, x, monkeypatch, block_features):
    """(streamed output, layer-by-layer output, client context, number of streamed blocks)."""
    client = P.Context(model.encryption_plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    calls = []
    original = streaming.run_segment

    def counting(layers, tensor, features):
        out = original(layers, tensor, features)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(streaming, "run_segment", counting)
    monkeypatch.setenv("SEALION_WORKERS", "1")
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, str(block_features))
    streamed = model.predict(query)
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, "0")
    plain = model.predict(query)
    return streamed, plain, client, calls


def _prepared(layers, x, **kwargs):
    keras.utils.set_random_seed(0)
    model = Sequential(layers)
    model.prepare_encryption("bfv", calibration=x, **kwargs)
    return model


@pytest.mark.parametrize("strides, padding", [(1, "valid"), (2, "same")])
def test_conv_square_flatten_dense_streams_by_row_bands(monkeypatch, rng, strides, padding):
    x = rng.uniform(0, 1, size=(5, 7, 7, 2))
    model = _prepared([Input((7, 7, 2)), Conv2D(4, 3, strides=strides, padding=padding), Square(), Flatten(),
                       Dense(3)], x, input_bits=4, weight_bits=4)
    hidden = model.layers[0].compute_output_shape((None, 7, 7, 2))[1:]
    assert len(streaming.blocks_for(model.layers[0], hidden, 16)) >= 3   # bands of one output row
    streamed, plain, client, calls = _encrypted_both_ways(model, x, monkeypatch, block_features=16)
    assert calls and all(calls)   # streamed, once per CRT prime
    expected = model.predict_discretized(x)
    np.testing.assert_array_equal(P.decrypt(client, streamed), expected)
    np.testing.assert_array_equal(P.decrypt(client, plain), expected)
    assert streamed.bound.tolist() == plain.bound.tolist()   # partial bounds add up exactly
    assert streamed.depth_used == plain.depth_used


def test_dense_activation_blocks_of_uneven_size_and_folded_batch_norm(monkeypatch, rng):
    """12 hidden units in blocks of 5, 5, 2 (an odd tree); BatchNormalization folded into the
    first Dense; a Poly and a Dropout in the segment; the last Dense squares its output."""
    x = rng.uniform(0, 1, size=(7, 8))
    model = Sequential([Input((8,)), Dense(12), BatchNormalization(), Poly([1.0, 0.5, 0.25]), Dropout(0.1),
                        Dense(3, activation="square")])
    model.compile(loss="mse")
    model.fit(x, rng.uniform(0, 1, size=(7, 3)), epochs=2, verbose=0)   # BN statistics move
    model.prepare_encryption("bfv", calibration=x, input_bits=4, weight_bits=4)
    assert model.layers[1].folded
    streamed, plain, client, calls = _encrypted_both_ways(model, x, monkeypatch, block_features=5)
    assert calls and all(calls)
    expected = model.predict_discretized(x)
    np.testing.assert_array_equal(P.decrypt(client, streamed), expected)
    np.testing.assert_array_equal(P.decrypt(client, plain), expected)
    assert streamed.bound.tolist() == plain.bound.tolist()


def test_segments_that_do_not_stream(monkeypatch, rng):
    x = rng.uniform(0, 1, size=(3, 6, 6, 1))
    pooled = _prepared([Input((6, 6, 1)), Conv2D(2, 3), Square(), AveragePooling2D(2), Flatten(), Dense(2)], x,
                       input_bits=4, weight_bits=4)
    assert streaming.find_segment(pooled.layers, 0) is None     # pooling mixes features
    small = _prepared([Input((4,)), Dense(3), Square(), Dense(2)], x[:, 0, :4, 0], input_bits=4, weight_bits=4)
    streamed, _, client, calls = _encrypted_both_ways(small, x[:, 0, :4, 0], monkeypatch, block_features=64)
    assert calls and not any(calls)   # one block holds all 3 hidden units: layer by layer
    np.testing.assert_array_equal(P.decrypt(client, streamed), small.predict_discretized(x[:, 0, :4, 0]))
    unfolded = Sequential([Input((4,)), Dense(3), Square(), BatchNormalization(), Dense(2)])
    assert streaming.find_segment(unfolded.layers, 0) is None   # per-channel affine, not folded
    assert streaming.find_segment([Dense(3), Dense(2)], 0) is None


def test_ckks_runs_layer_by_layer(monkeypatch, rng):
    x = rng.uniform(0, 1, size=(4, 8))
    keras.utils.set_random_seed(0)
    model = Sequential([Input((8,)), Dense(12), Square(), Dense(3)])
    model.prepare_encryption("ckks", calibration=x, precision_bits=12)
    streamed, _, client, calls = _encrypted_both_ways(model, x, monkeypatch, block_features=4)
    assert calls == []    # never asked: CKKS is not streamed
    np.testing.assert_allclose(P.decrypt(client, streamed), model.predict_discretized(x), atol=2 ** -12)


def test_row_bands():
    assert streaming.row_bands((14, 14, 16), 392) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14)]
    assert streaming.row_bands((5, 4, 2), 20) == [(0, 2), (2, 4), (4, 5)]   # 8 features a row: 2.5 -> 2 rows
    assert streaming.row_bands((3, 100, 8), 10) == [(0, 1), (1, 2), (2, 3)]  # at least one row


def test_channel_blocks_and_setting(monkeypatch):
    assert streaming.channel_blocks((14, 14, 16), 392) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12),
                                                           (12, 14), (14, 16)]
    assert streaming.channel_blocks((30,), 392) == [(0, 30)]
    assert streaming.channel_blocks((14, 14, 3), 10) == [(0, 1), (1, 2), (2, 3)]   # at least one channel
    for bad in ("-1", "many"):
        monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, bad)
        with pytest.raises(ValueError, match="SEALION_STREAM_FEATURES must be a non-negative integer"):
            streaming.block_features_setting()


def test_leftover_primes_are_shared_by_blocks_between_workers(monkeypatch, rng):
    """3 CRT primes on 2 workers: one prime each, the third split by row bands between them
    and finished here. Same integers and bounds as one process, bit for bit."""
    x = rng.uniform(0, 1, size=(5, 7, 7, 1))
    model = _prepared([Input((7, 7, 1)), Conv2D(4, 3), Square(), Flatten(), Dense(3), Square(), Dense(2)], x,
                      input_bits=6, weight_bits=6)
    client = P.Context(model.encryption_plan.parameters)
    assert len(client.components) == 3
    query = model.encrypt_inputs(client.public(), x)
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, "20")   # 5 bands of one output row
    plan = streaming.shared_component_plan(model.layers, query, 2)
    assert plan is not None and [c.tolist() for c in plan[2]] == [[0], [1]] and plan[3] == [2]
    used = []
    original = streaming.run_shared
    monkeypatch.setattr(streaming, "run_shared", lambda *a, **k: used.append(1) or original(*a, **k))
    monkeypatch.setenv("SEALION_WORKERS", "2")
    shared = model.predict(query)
    assert used == [1]
    monkeypatch.setenv("SEALION_WORKERS", "1")
    alone = model.predict(query)
    expected = model.predict_discretized(x)
    np.testing.assert_array_equal(P.decrypt(client, shared), expected)
    np.testing.assert_array_equal(P.decrypt(client, alone), expected)
    assert shared.bound.tolist() == alone.bound.tolist()
    assert streaming.shared_component_plan(model.layers, query, 3) is None     # 3 workers divide 3 primes
    assert streaming.shared_component_plan(model.layers, query, 1) is None
    one = P.parallel.component_view(query, [0])                               # 1 prime on 2 workers:
    assert streaming.shared_component_plan(model.layers, one, 2)[3] == [0]     # its blocks are shared


def test_one_prime_shared_by_two_workers(monkeypatch, rng):
    """A single CRT prime on 2 workers: each computes half of the Dense blocks."""
    x = rng.uniform(0, 1, size=(6, 8))
    model = _prepared([Input((8,)), Dense(12), Square(), Dense(3)], x, input_bits=4, weight_bits=4)
    client = P.Context(model.encryption_plan.parameters)
    assert len(client.components) == 1
    query = model.encrypt_inputs(client.public(), x)
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, "4")
    monkeypatch.setenv("SEALION_WORKERS", "2")
    plan = streaming.shared_component_plan(model.layers, query, 2)
    assert [c.size for c in plan[2]] == [0, 0] and plan[3] == [0] and len(plan[1]) == 3
    shared = model.predict(query)
    monkeypatch.setenv("SEALION_WORKERS", "1")
    alone = model.predict(query)
    np.testing.assert_array_equal(P.decrypt(client, shared), model.predict_discretized(x))
    assert shared.bound.tolist() == alone.bound.tolist()
