"""Position gates (heras.layers.PositionGate): folded by preparation, pruned positions never computed.

The gate here is a minimal PositionGate with fixed multipliers, the way an application writes
one; applications/sparsifier's L0Gate is tested in test_sparsifier.py.
"""

import keras
import numpy as np
import pytest

import primitives as P
from primitives.backends import encrypted as encrypted_backend
from heras.layers import Conv2D, Dense, Flatten, Input, Poly, PositionGate, Square, register_layer
from heras.models import Sequential, pruning, streaming


@register_layer(package="tests")
class FixedGate(PositionGate):
    """z * x with fixed multipliers ``values`` (broadcast to the input's per-sample shape)."""

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        self.values = np.asarray(values, dtype=np.float64).tolist()

    def gate_values(self):
        return np.asarray(self.values)

    def call_training(self, inputs, training=None):
        return inputs * keras.ops.convert_to_tensor(np.asarray(self.values, dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "values": self.values}


def _conv_model(z):
    keras.utils.set_random_seed(0)
    return Sequential([Input((6, 6, 1)), Conv2D(3, 3, strides=2, padding="same"), FixedGate(z), Square(),
                       Flatten(), Dense(4)])


def _gates(rng, shape, zeros):
    """Multipliers: ``zeros`` positions 0, the rest 1 or a fraction."""
    z = rng.choice([1.0, 0.6, 0.3], size=shape)
    z.reshape(-1)[rng.choice(z.size, zeros, replace=False)] = 0.0
    return z


def _square_sizes(monkeypatch):
    sizes, original = [], encrypted_backend.square

    def counting(x):
        sizes.append(x.size)
        return original(x)
    monkeypatch.setattr(encrypted_backend, "square", counting)
    return sizes


@pytest.mark.parametrize("block_features", [0, 7])
def test_bfv_pruned_conv_equals_the_discretised_model_and_squares_kept_positions_only(monkeypatch, rng,
                                                                                       block_features):
    z = _gates(rng, (3, 3, 3), zeros=11)
    model = _conv_model(z)
    x = rng.uniform(0, 1, size=(4, 6, 6, 1))
    float_logits = model.predict(x, verbose=0)
    plan = model.prepare_encryption("bfv", calibration=x, input_bits=4, weight_bits=6)
    assert model.layers[1].gates_folded
    kept = pruning.computed_features(model)[0]
    assert kept.size == 27 - 11 and np.all(z.reshape(-1)[kept] != 0)
    costs = model.encryption_costs()
    assert costs[2]["activations"] == kept.size   # summary counts computed squares
    # the folded discretised model is the gated float model, quantised
    np.testing.assert_allclose(model.predict_discretized(x) / plan.output_scale, float_logits, atol=0.05)
    monkeypatch.setenv("SEALION_WORKERS", "1")
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, str(block_features))
    sizes = _square_sizes(monkeypatch)
    client = P.Context(plan.parameters)
    out = model.predict(model.encrypt_inputs(client.public(), x))
    np.testing.assert_array_equal(P.decrypt(client, out), model.predict_discretized(x))   # bit for bit
    assert sum(sizes) == kept.size     # no square for a pruned position


def test_dense_gate_after_square_folds_forward_and_prunes_units_numpy(rng):
    """Dense -> Square -> gate -> Dense: z (not z^2) folds into the last Dense; Dense(6) computes
    only its kept units; the pruned run (numpy, run_sequential) equals the discretised model."""
    keras.utils.set_random_seed(1)
    z = np.array([1.0, 0.0, 0.5, 0.0, 1.0, 0.25])
    model = Sequential([Input((5,)), Dense(6), Square(), FixedGate(z), Dense(3)])
    x = rng.uniform(0, 1, size=(8, 5))
    float_logits = model.predict(x, verbose=0)
    plan = model.prepare_encryption("bfv", calibration=x, input_bits=6, weight_bits=8)
    computed = pruning.computed_features(model)
    assert computed[0].tolist() == [0, 2, 4, 5] and computed[-1] is None
    pruned = streaming.run_sequential(model.layers, plan.quantize(x), lambda layer, t: layer.call(t),
                                      computed=computed)
    np.testing.assert_array_equal(pruned, model.predict_discretized(x))
    np.testing.assert_allclose(pruned / plan.output_scale, float_logits, atol=0.05)
    assert sum(row["activations"] for row in model.encryption_costs()) == 4


def test_ckks_pruned_model_stays_within_its_proven_bound(rng):
    z = _gates(rng, (3, 3, 3), zeros=9)
    model = _conv_model(z)
    x = rng.uniform(0, 1, size=(3, 6, 6, 1))
    float_logits = model.predict(x, verbose=0).astype(np.float64)
    plan = model.prepare_encryption("ckks", calibration=x, precision_bits=12)
    client = P.Context(plan.parameters)
    logits = model.decrypt_outputs(client, model.predict(model.encrypt_inputs(client.public(), x)))
    reference = model.predict_discretized(x)
    assert np.max(np.abs(logits - reference)) <= plan.error_bound < 2.0 ** -12
    np.testing.assert_allclose(reference, float_logits, rtol=1e-4, atol=1e-4)


def test_gates_that_cannot_fold_are_refused():
    keras.utils.set_random_seed(0)
    z = np.linspace(0, 1, 9).reshape(3, 3, 1)   # per position, before a Poly: no fold either way
    model = Sequential([Input((6, 6, 1)), Conv2D(1, 3, strides=2, padding="same"), FixedGate(z), Poly(),
                        Flatten(), Dense(2)])
    with pytest.raises(NotImplementedError, match="cannot fold"):
        model.prepare_encryption("bfv")


def test_per_channel_gate_folds_backward_into_the_conv(rng):
    keras.utils.set_random_seed(0)
    z = np.array([1.0, 0.0, 0.5])
    model = Sequential([Input((6, 6, 1)), Conv2D(3, 3, strides=2, padding="same"), FixedGate(z), Poly(),
                        Flatten(), Dense(2)])
    x = rng.uniform(0, 1, size=(4, 6, 6, 1))
    float_logits = model.predict(x, verbose=0)
    model.prepare_encryption("ckks", calibration=x)
    np.testing.assert_allclose(model.predict_discretized(x), float_logits, rtol=1e-4, atol=1e-4)


def test_output_features_select_the_same_values_on_every_backend(bfv_context, rng):
    x = rng.integers(0, 4, size=(3, 5, 5, 2))
    kernel = rng.integers(-3, 4, size=(3, 3, 2, 4))
    features = np.array([0, 7, 8, 33, 99])
    full = P.conv2d(x, kernel, [1, 2, 3, 4], strides=1, padding="same").reshape(3, -1)
    selected = P.conv2d(x, kernel, [1, 2, 3, 4], strides=1, padding="same", output_features=features)
    np.testing.assert_array_equal(selected, full[:, features])
    enc = P.conv2d(P.encrypt(bfv_context, x, bound=3), kernel, [1, 2, 3, 4], strides=1, padding="same",
                   output_features=features)
    assert enc.shape == (5,)
    np.testing.assert_array_equal(P.decrypt(bfv_context, enc), full[:, features])
    bound = P.conv2d(P.BoundTensor(3, shape=(5, 5, 2)), kernel, None, padding="same", output_features=features)
    assert bound.bound.shape == (5,)
    dense = P.matmul(x.reshape(3, -1), rng.integers(-2, 3, size=(50, 6)), output_features=[5, 1])
    assert dense.shape == (3, 2)
    with pytest.raises(P.ShapeError, match="distinct indices"):
        P.matmul(x.reshape(3, -1), np.ones((50, 6), dtype=int), output_features=[6])


@pytest.mark.slow
def test_pruned_segments_shared_between_workers_stay_exact(monkeypatch, rng):
    """3 CRT primes on 2 workers: the leftover prime's pruned blocks are shared between the
    processes (streaming.shared_component_plan); both gates prune; bit for bit."""
    keras.utils.set_random_seed(0)
    z2 = np.array([1, 0, 0.5, 1, 0, 1, 1, 0.7])
    model = Sequential([Input((6, 6, 1)), Conv2D(4, 3, strides=2, padding="same"), FixedGate(_gates(rng, (3, 3, 4), 13)),
                        Square(), Flatten(), Dense(8), FixedGate(z2), Square(), Dense(3)])
    x = rng.uniform(0, 1, size=(5, 6, 6, 1))
    plan = model.prepare_encryption("bfv", calibration=x, input_bits=8, weight_bits=8)
    assert len(plan.parameters.plain_moduli) == 3
    computed = pruning.computed_features(model)
    assert computed[2].size == 36 - 13 and computed[6].size == 6 and computed[-1] is None
    monkeypatch.setenv("SEALION_WORKERS", "2")
    monkeypatch.setenv(streaming.ENVIRONMENT_VARIABLE, "7")
    client = P.Context(plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    assert streaming.shared_component_plan(model.layers, query, 2, computed=computed) is not None
    np.testing.assert_array_equal(P.decrypt(client, model.predict(query)), model.predict_discretized(x))
