"""Parallel encrypted computation (primitives.parallel): identical results, errors surface."""

import numpy as np
import pytest

import primitives as P
from primitives import parallel


def network(w):
    return lambda t: P.add(P.square(P.matmul(t, w)), 3)


@pytest.mark.parametrize("workers", [2, 3])
def test_split_over_crt_primes_decrypts_identically(bfv_big_context, rng, workers):
    x = rng.integers(-50, 50, size=(40, 6))
    w = rng.integers(-30, 30, size=(6, 4))
    enc = P.encrypt(bfv_big_context.public(), x, bound=50)
    serial = network(w)(enc)
    split = parallel.map_parts(network(w), enc, workers=workers)
    expected = (x @ w) ** 2 + 3
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, split), expected)
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, serial), expected)
    assert split.data.shape == serial.data.shape == (4, 1, 4)
    np.testing.assert_array_equal(split.noise_used_bits, serial.noise_used_bits)
    assert split.bound.tolist() == serial.bound.tolist() and split.depth_used == serial.depth_used == 1


def test_split_over_ciphertext_groups(ckks_context, rng):
    slots = ckks_context.slot_count
    x = rng.uniform(-1, 1, size=(2 * slots + 5, 3))
    w = rng.uniform(-1, 1, size=(3, 2))
    enc = P.encrypt(ckks_context, x)
    out = parallel.map_parts(network(w), enc, workers=2)
    assert out.batch_size == len(x) and out.groups == 3
    np.testing.assert_allclose(P.decrypt(ckks_context, out), (x @ w) ** 2 + 3, atol=1e-3)


def test_worker_errors_reach_the_caller_with_their_type(bfv_big_context, rng):
    enc = P.encrypt(bfv_big_context.public(), rng.integers(0, 10, size=(4, 2)), bound=10)
    huge = np.full((2, 1), 2 ** 40)

    def overflow(t):
        return P.square(P.square(P.matmul(t, huge)))

    with pytest.raises(P.OverflowRiskError):
        parallel.map_parts(overflow, enc, workers=2)


def test_child_only_failure_is_reported(bfv_big_context, rng):
    enc = P.encrypt(bfv_big_context.public(), rng.integers(0, 10, size=(4, 2)), bound=10)
    parent_pid = __import__("os").getpid()

    def fails_in_child(t):
        if __import__("os").getpid() != parent_pid:
            raise ValueError("child failed")
        return t

    with pytest.raises(ValueError, match="child failed"):
        parallel.map_parts(fails_in_child, enc, workers=2)


def test_default_workers_balance_crt_primes_over_cores(monkeypatch):
    monkeypatch.delenv("SEALION_WORKERS", raising=False)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    # one process per prime when the cores do not divide them (up to twice the cores)
    assert [parallel.worker_count(k) for k in (None, 1, 2, 3, 4, 5, 6)] == [2, 1, 2, 3, 2, 2, 2]
    monkeypatch.setattr(parallel, "_cores", lambda: 1)
    assert parallel.worker_count(3) == 1


def test_worker_setting(monkeypatch):
    monkeypatch.setenv("SEALION_WORKERS", "1")
    assert parallel.worker_count() == 1
    for bad in ("0", "two"):
        monkeypatch.setenv("SEALION_WORKERS", bad)
        with pytest.raises(ValueError, match="SEALION_WORKERS must be a positive integer"):
            parallel.worker_count()


def test_parent_garbage_is_not_collected_in_a_worker(bfv_big_context, rng):
    """A worker must never finalise the parent's objects: TensorFlow's function objects call
    into an eager context that does not survive a fork (a collected one segfaulted a worker
    in the full suite). The parent leaves trained Keras models in unreachable cycles; the
    worker forces a full collection while it computes."""
    import gc

    import keras

    gc.disable()  # keep the cycles alive until the fork
    try:
        for _ in range(3):
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            model.compile(loss="mse")
            model.fit(np.ones((8, 4)), np.ones((8, 3)), epochs=1, verbose=0)  # traced functions
            cycle = [model]
            cycle.append(cycle)
        del model, cycle
        x = rng.integers(0, 10, size=(4, 2))
        enc = P.encrypt(bfv_big_context.public(), x, bound=10)

        def collects(t):
            gc.collect()
            return P.add(t, 1)

        out = parallel.map_parts(collects, enc, workers=2)
    finally:
        gc.enable()
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, out), x + 1)


def test_each_process_runs_its_crt_components_one_at_a_time(bfv_big_context, rng):
    """Intermediate ciphertexts of one CRT prime at a time (memory), same ciphertexts."""
    x = rng.integers(-50, 50, size=(10, 6))
    w = rng.integers(-30, 30, size=(6, 4))
    enc = P.encrypt(bfv_big_context.public(), x, bound=50)
    seen = []

    def recording(t):
        seen.append(t.data.shape[0])
        return network(w)(t)

    out = parallel.map_parts(recording, enc, workers=1)
    assert seen == [1] * enc.data.shape[0] and enc.data.shape[0] > 1
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, out), (x @ w) ** 2 + 3)
    reference = network(w)(enc)
    assert out.bound.tolist() == reference.bound.tolist()
    np.testing.assert_array_equal(out.noise_used_bits, reference.noise_used_bits)


def test_run_jobs_returns_each_jobs_tensors_in_order(bfv_big_context, rng, monkeypatch):
    """Jobs with several results come back in order, forked or (no os.fork) one after the other."""
    x = rng.integers(-9, 9, size=(4, 3))
    enc = P.encrypt(bfv_big_context.public(), x, bound=9)
    views = [parallel.component_view(enc, [i]) for i in range(2)]
    jobs = [lambda v=v: [P.add(v, 1), P.square(v)] for v in views]
    contexts = [[v.context, v.context] for v in views]
    for forked in (True, False):
        if not forked:
            monkeypatch.delattr(parallel.os, "fork")
        results = parallel.run_jobs(jobs, contexts)
        assert [len(r) for r in results] == [2, 2]
        for i, (plus, squared) in enumerate(results):
            expected = views[i]
            np.testing.assert_array_equal(plus.data.shape, expected.data.shape)
            assert plus.bound.tolist() == P.add(expected, 1).bound.tolist()
            assert squared.bound.tolist() == P.square(expected).bound.tolist()
        whole = parallel.stitch_components([r[0] for r in results] + [P.add(parallel.component_view(enc, [j]), 1)
                                            for j in (2, 3)], enc)
        np.testing.assert_array_equal(P.decrypt(bfv_big_context, whole), x + 1)
