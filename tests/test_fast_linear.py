"""The coefficient-domain linear kernel against SEAL's own multiply_plain/add loop.

Both kernels run on the SAME ciphertexts; BFV and CKKS outputs must be the same ciphertexts
bit for bit (except outputs without weights: fresh encryptions of zero, compared decrypted),
and decrypt to numpy's result (BFV exactly, CKKS within tolerance).
"""

import numpy as np
import pytest
from tenseal import sealapi

import primitives as P
from primitives import linear_maps
from primitives.backends.encrypted import coefficient_linear, coefficients, linear, seal_ops


# ----------------------------------------------------------------- helpers
@pytest.fixture
def kernel(monkeypatch):
    """Run a function under a chosen linear kernel: ``kernel("seal", f, *args)``."""
    def run(name, function, *args, **kwargs):
        monkeypatch.setattr(linear, "KERNEL", name)
        result = function(*args, **kwargs)
        used = list(linear.last_kernels)
        monkeypatch.setattr(linear, "KERNEL", None)
        assert used and all(k == name for k in used), f"expected the {name} kernel, ran {used}"
        return result
    return run


def serialized_coefficients(component, ct):
    return coefficients.io_for(component, "serialized").read(ct)


def assert_same_ciphertexts(fast, reference, zero_rows=()):
    """Every ciphertext of ``fast`` equals ``reference``'s bit for bit (coefficients, level,
    scale, form); rows in ``zero_rows`` are fresh encryptions and only compared decrypted."""
    assert fast.data.shape == reference.data.shape
    components = fast.context.components
    for (c, g, k), a in np.ndenumerate(fast.data):
        b = reference.data[c, g, k]
        assert a.parms_id() == b.parms_id() and a.size() == b.size() and a.scale == b.scale
        assert a.is_ntt_form() == b.is_ntt_form()
        if k not in zero_rows:
            np.testing.assert_array_equal(serialized_coefficients(components[c], a),
                                          serialized_coefficients(components[c], b))


def both(kernel, op, *args, **kwargs):
    return kernel("coefficients", op, *args, **kwargs), kernel("seal", op, *args, **kwargs)


# ----------------------------------------------------------------- BFV layers
def test_bfv_dense_negative_zero_large_weights_zero_row_bias(bfv_context, via, kernel, rng):
    t_min = min(bfv_context.parameters.plain_moduli)
    x = rng.integers(-3, 4, size=(9, 12))
    w = rng.integers(-9, 10, size=(12, 5))
    w[:, 0] = 0                                   # a zero row: bias only
    w[0, 1], w[1, 1] = t_min // 2 + 3, -(t_min - 5)   # |w| >= t/2 for the smallest prime
    w[2, 2] = 2 * t_min + 1                       # |w| > t: SEAL multiplies by |w| mod t
    bias = np.array([7, -3, 0, 11, -1])
    enc = via(P.encrypt(bfv_context, x, bound=3))
    fast, reference = both(kernel, P.matmul, enc, w, bias)
    assert_same_ciphertexts(fast, reference, zero_rows=(0,))
    expected = x.astype(object) @ w.astype(object) + bias
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), expected)
    np.testing.assert_array_equal(P.decrypt(bfv_context, reference), expected)
    assert fast.noise_used_bits.tolist() == reference.noise_used_bits.tolist()


def test_bfv_four_crt_primes_large_weights(bfv_big_context, kernel, rng):
    """30-bit plaintext primes: weights of ~2^29 need several weight digits."""
    x = rng.integers(-2, 3, size=(3, 6))
    w = rng.integers(-(2 ** 29), 2 ** 29, size=(6, 3))
    enc = P.encrypt(bfv_big_context, x, bound=2)
    fast, reference = both(kernel, P.matmul, enc, w, [1, 2, 3])
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_big_context, fast), x.astype(object) @ w.astype(object) + [1, 2, 3])


def test_bfv_batch_over_several_groups(bfv_context, kernel, rng):
    batch = bfv_context.slot_count + 5
    x = rng.integers(-5, 6, size=(batch, 6))
    w = rng.integers(-4, 5, size=(6, 3))
    enc = P.encrypt(bfv_context, x, bound=5)
    assert enc.groups == 2
    fast, reference = both(kernel, P.matmul, enc, w)
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), x @ w)


def test_bfv_products_before_relinearisation(bfv_context, via, kernel, rng):
    """Squares keep three polynomials until a product needs two: the kernel takes them as is."""
    x = rng.integers(-6, 7, size=(4, 8))
    squared = P.square(via(P.encrypt(bfv_context, x, bound=6)))
    assert {ct.size() for ct in squared.data.ravel()} == {3}
    w = rng.integers(-5, 6, size=(8, 3))
    fast, reference = both(kernel, P.matmul, squared, w, [2, 0, -2])
    assert {ct.size() for ct in fast.data.ravel()} == {3}
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), (x ** 2) @ w + [2, 0, -2])
    component = bfv_context.components[0]
    relinearized = seal_ops.relinearized(component, fast.data[0, 0, 0])
    assert relinearized.size() == 2
    assert component.decryptor.invariant_noise_budget(relinearized) > 0


@pytest.mark.parametrize("strides,padding", [(1, "same"), (2, "valid")])
def test_bfv_conv2d(bfv_context, via, kernel, rng, strides, padding):
    images = rng.integers(0, 8, size=(2, 6, 6, 2))
    k = rng.integers(-3, 4, size=(3, 3, 2, 3))
    k[0, 0, 0, :] = 0  # zero weights change some rows' inputs: blocks still merge
    bias = np.array([1, 0, -4])
    enc = via(P.encrypt(bfv_context, images, bound=7))
    fast, reference = both(kernel, P.conv2d, enc, k, bias, strides=strides, padding=padding)
    assert_same_ciphertexts(fast, reference)
    expected = P.conv2d(images, k, bias, strides=strides, padding=padding)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), expected)


def test_bfv_sum_pool_and_sum(bfv_context, via, kernel, rng):
    images = rng.integers(-9, 10, size=(3, 4, 4, 2))
    enc = via(P.encrypt(bfv_context, images, bound=9))
    fast, reference = both(kernel, P.sum_pool2d, enc, 2)
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), P.sum_pool2d(images, 2))
    fast, reference = both(kernel, P.sum, enc, axis=(1, 2))
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), images.sum(axis=(1, 2)))


# ----------------------------------------------------------------- CKKS layers
def test_ckks_dense_rescaled_bit_for_bit(ckks_context, via, kernel, rng):
    x = rng.uniform(-1, 1, size=(5, 10))
    w = rng.normal(0, 0.5, size=(10, 4))
    w[:, 3] = 0
    w[0, 0] = 1.0          # a unit weight is still a product when the layer rescales
    w[1, 0] = 1e-12        # rounds to 0 at the prime's scale: dropped by both kernels
    bias = np.array([0.25, -1.0, 0.0, 0.5])
    enc = via(P.encrypt(ckks_context, x))
    fast, reference = both(kernel, P.matmul, enc, w, bias)
    assert_same_ciphertexts(fast, reference, zero_rows=(3,))
    assert fast.levels_left == reference.levels_left == enc.levels_left - 1
    np.testing.assert_allclose(P.decrypt(ckks_context, fast), x @ w + bias, atol=1e-4)
    np.testing.assert_allclose(P.decrypt(ckks_context, fast), P.decrypt(ckks_context, reference), atol=1e-5)


def test_ckks_sum_and_average_pool(ckks_context, kernel, rng):
    images = rng.uniform(-1, 1, size=(2, 4, 4, 2))
    enc = P.encrypt(ckks_context, images)
    fast, reference = both(kernel, P.sum, enc, axis=-1)           # weights +-1: no rescale
    assert_same_ciphertexts(fast, reference)
    assert fast.levels_left == enc.levels_left
    fast, reference = both(kernel, P.avg_pool2d, enc, 2)
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_allclose(P.decrypt(ckks_context, fast), P.avg_pool2d(images, 2), atol=1e-4)


def test_ckks_inputs_at_a_lower_level(ckks_context, kernel, rng):
    x = rng.uniform(-1, 1, size=(3, 6))
    enc = P.square(P.encrypt(ckks_context, x))  # one level down
    w = rng.normal(0, 0.3, size=(6, 2))
    fast, reference = both(kernel, P.matmul, enc, w)
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_allclose(P.decrypt(ckks_context, fast), (x ** 2) @ w, atol=1e-4)


# ----------------------------------------------------------------- the kernel's arithmetic
def reference_sums(component, cts, indptr, indices, weights):
    """sum_j w_j * coefficients_j mod q_i with Python integers (independent of SEAL)."""
    io = coefficients.io_for(component, "serialized")
    arrays = [io.read(ct).astype(object) for ct in cts]
    moduli = np.array(coefficients.level_moduli(component, cts[0].parms_id()), dtype=object)[None, :, None]
    rows = []
    for k in range(len(indptr) - 1):
        taps = range(indptr[k], indptr[k + 1])
        if not taps:
            rows.append(None)
            continue
        size = max(arrays[indices[i]].shape[0] for i in taps)
        total = np.zeros((size,) + arrays[0].shape[1:], dtype=object)
        for i in taps:
            a = arrays[indices[i]]
            total[:a.shape[0]] += int(weights[i]) * a
        rows.append(total % moduli)
    return rows


@pytest.mark.parametrize("route", ["direct", "serialized"])
@pytest.mark.parametrize("context_name,magnitude,mode", [
    ("bfv_context", 3, "float"), ("bfv_context", 2 ** 18, "sum"), ("bfv_context", 2 ** 61, "horner"),
    ("bfv_big_context", 2 ** 18, "quotient"), ("bfv_big_context", 2 ** 40, "quotient"),
    ("bfv_big_context", 2 ** 61, "horner")])
def test_combine_matches_integer_arithmetic(request, rng, route, context_name, magnitude, mode):
    """Weights up to 2^61, 36- and 58-bit coefficient primes, mixed ciphertext sizes (2 and 3),
    tiny memory budgets (column chunks, input parts, output batches): the result is
    sum w_j x_j mod q_i exactly, in every reduction mode."""
    context = request.getfixturevalue(context_name)
    component = context.components[0]
    x = P.encrypt(context, rng.integers(-3, 4, size=(2, 6)), bound=3)
    cts = list(x.data[0, 0])
    squares = P.square(x)
    cts[4], cts[5] = squares.data[0, 0, 4], squares.data[0, 0, 5]   # size 3
    indptr = np.array([0, 6, 6, 9, 11])
    indices = np.array([0, 1, 2, 3, 4, 5, 0, 2, 4, 1, 3])
    weights = rng.integers(-magnitude, magnitude, size=indices.size, dtype=np.int64)
    weights[weights == 0] = 1
    plan = coefficient_linear.plan_for(weights[None, :6], max(component.coeff_moduli))
    assert plan.mode == mode
    io = coefficients.io_for(component, route)
    n, L = cts[0].poly_modulus_degree(), cts[0].coeff_modulus_size()
    for budget in (None, 3 * 8 * n * L):  # default, and a budget of ~1.5 ciphertexts
        out = coefficient_linear.combine(component, cts, indptr, indices, weights, io=io, budget=budget)
        assert out[1] is None
        expected = reference_sums(component, cts, indptr, indices, weights)
        for k in (0, 2, 3):
            got = serialized_coefficients(component, out[k])
            assert got.shape == expected[k].shape
            np.testing.assert_array_equal(got.astype(object), expected[k])
        assert [out[k].size() for k in (0, 2, 3)] == [3, 3, 2]


def test_plan_limbs_and_digits_stay_below_2_to_53():
    for magnitude, taps, q in [(7, 784, 2 ** 44 - 1), (2 ** 36, 784, 2 ** 46 - 1), (2 ** 61, 3136, 2 ** 60 - 1),
                               (1, 3, 2 ** 36 - 1)]:
        weights = np.full((2, taps), magnitude, dtype=np.int64)
        weights[1, ::2] *= -1
        plan = coefficient_linear.plan_for(weights, q)
        assert plan.limbs * plan.limb_bits >= (q - 1).bit_length()
        for _, matrix in plan.matrices:
            assert np.abs(matrix).sum(axis=1).max() * (2 ** plan.limb_bits - 1) < 2 ** 53


def test_blocks_share_inputs_when_it_pays():
    dense = linear_maps.matmul_map((50,), np.ones((50, 8), dtype=np.int64))
    assert len(coefficient_linear.blocks_of(dense.indptr, dense.indices, range(dense.out_size))) == 1
    pool = linear_maps.pool2d_map((8, 8, 2), (2, 2), (2, 2), "valid", average=False)
    blocks = coefficient_linear.blocks_of(pool.indptr, pool.indices, range(pool.out_size))
    # disjoint windows: small blocks merge (Python overhead) but no input is converted twice
    assert len(blocks) < pool.out_size
    assert sum(union.size for _, union in blocks) == pool.indices.size
    conv = linear_maps.conv2d_map((12, 12, 1), np.ones((3, 3, 1, 8), dtype=np.int64))
    blocks = coefficient_linear.blocks_of(conv.indptr, conv.indices, range(conv.out_size))
    assert 1 < len(blocks) < conv.out_size // 8  # neighbouring windows merge
    assert sorted(k for rows, _ in blocks for k in rows) == list(range(conv.out_size))


def test_unsupported_inputs_fall_back_to_seal(ckks_context, rng, monkeypatch):
    enc = P.encrypt(ckks_context, rng.uniform(-1, 1, size=(2, 3)))
    component = ckks_context.components[0]
    cts = list(enc.data[0, 0])
    odd = seal_ops._rescaled_copy(component, cts[1], cts[1].scale * (1 + 1e-9))
    with pytest.raises(coefficient_linear.Unsupported):
        coefficient_linear.combine(component, [cts[0], odd], [0, 2], [0, 1], [1, 1])
    with pytest.raises(coefficient_linear.Unsupported):
        coefficient_linear.combine(component, cts, [0, 1], [0], np.array([2 ** 62], dtype=object))
    monkeypatch.setattr(linear, "KERNEL", "coefficients")
    huge = P.matmul(enc, np.full((3, 1), 2.0 ** 33))  # round(w * p) beyond 2^62: SEAL's loop
    assert linear.last_kernels == ["seal"]
    assert huge.shape == (1,)


# ----------------------------------------------------------------- coefficient transfer
@pytest.mark.parametrize("context_name", ["bfv_context", "ckks_context"])
def test_direct_route_is_validated_and_agrees_with_serialisation(request, rng, context_name):
    context = request.getfixturevalue(context_name)
    component = context.components[0]
    report = coefficients.validate(component)
    assert report["direct"], report["reason"]
    direct, serialized = coefficients.io_for(component, "direct"), coefficients.io_for(component, "serialized")
    x = P.encrypt(context, rng.integers(-3, 4, size=(2, 2)) if context.scheme == "bfv" else rng.uniform(size=(2, 2)))
    for ct in [x.data[0, 0, 0], P.square(x).data[0, 0, 1]]:
        a, b = direct.read(ct), serialized.read(ct)
        assert not a.flags.writeable
        np.testing.assert_array_equal(a, b)
        assert a.shape == (ct.size(), ct.coeff_modulus_size(), ct.poly_modulus_degree())
    # writing: both routes make the same ciphertext, SEAL decrypts what was written
    ct = x.data[0, 0, 0]
    values = serialized.read(ct)
    for io in (direct, serialized):
        out, buffer = io.allocate(ct.parms_id(), ct.size(), ct.is_ntt_form(), ct.scale,
                                  ct.poly_modulus_degree(), ct.coeff_modulus_size())
        buffer.reshape(-1)[...] = values.reshape(-1)
        io.commit(out, buffer)
        assert out.is_ntt_form() == ct.is_ntt_form() and out.scale == ct.scale
        np.testing.assert_array_equal(serialized.read(out), values)
        plain_a, plain_b = sealapi.Plaintext(), sealapi.Plaintext()
        component.decryptor.decrypt(out, plain_a)
        component.decryptor.decrypt(ct, plain_b)
        assert plain_a.to_string() == plain_b.to_string() if context.scheme == "bfv" else True


def test_failed_validation_falls_back_to_serialisation(bfv_context, kernel, rng, monkeypatch):
    """A layout the checks do not recognise disables the direct route; results stay exact."""
    component = bfv_context.components[0]
    monkeypatch.setattr(coefficients, "_DATA", coefficients._DATA + 8)  # a wrong member offset
    report = coefficients.validate(component)
    assert not report["direct"] and "dyn_array" in report["reason"]
    with pytest.raises(coefficients.LayoutError):
        coefficients.direct_read(P.encrypt(bfv_context, [[1]]).data[0, 0, 0])
    for c in bfv_context.components:
        monkeypatch.setattr(c, "cache", {k: v for k, v in c.cache.items() if k[0] != "coefficient_io"})
    assert coefficients.io_for(component, "auto").route == "serialized"
    with pytest.raises(coefficients.LayoutError):
        coefficients.io_for(component, "direct")
    x = rng.integers(-4, 5, size=(3, 10))
    w = rng.integers(-6, 7, size=(10, 4))
    enc = P.encrypt(bfv_context, x, bound=4)
    fast, reference = both(kernel, P.matmul, enc, w)
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), x @ w)


def test_forced_serialized_route(bfv_context, kernel, rng, monkeypatch):
    monkeypatch.setattr(coefficients, "ROUTE", "serialized")
    x = rng.integers(-4, 5, size=(3, 10))
    w = rng.integers(-6, 7, size=(10, 4))
    enc = P.encrypt(bfv_context, x, bound=4)
    fast, reference = both(kernel, P.matmul, enc, w, [1, 1, 1, 1])
    assert coefficients.io_for(bfv_context.components[0]).route == "serialized"
    assert_same_ciphertexts(fast, reference)


def test_settings_are_checked(monkeypatch):
    monkeypatch.setenv("SEALION_LINEAR_KERNEL", "fastest")
    with pytest.raises(ValueError, match="SEALION_LINEAR_KERNEL"):
        linear.kernel_setting()
    monkeypatch.setenv("SEALION_COEFFICIENT_ROUTE", "memory")
    with pytest.raises(ValueError, match="SEALION_COEFFICIENT_ROUTE"):
        coefficients.route_setting()
    monkeypatch.setenv("SEALION_BLAS_THREADS", "-1")
    with pytest.raises(ValueError, match="SEALION_BLAS_THREADS"):
        coefficient_linear.blas_threads_setting()


def test_auto_kernel_choice():
    dense = linear_maps.matmul_map((100,), np.full((100, 10), 3))
    assert linear.use_coefficients(dense, "auto")
    assert not linear.use_coefficients(dense, "seal")
    pooled = linear_maps.pool2d_map((8, 8, 4), (2, 2), (2, 2), "valid", average=False)
    assert not linear.use_coefficients(pooled, "auto")       # 1 tap per input: SEAL adds
    assert linear.use_coefficients(pooled, "coefficients")
    tiny = linear_maps.matmul_map((3,), np.full((3, 1), 5))
    assert not linear.use_coefficients(tiny, "auto")


def test_blas_threads_are_restored():
    functions = coefficient_linear._openblas()
    if functions is None:
        pytest.skip("numpy does not bundle OpenBLAS here")
    get, _ = functions
    before = get()
    with coefficient_linear.blas_threads(1):
        assert get() == 1
    assert get() == before


@pytest.mark.parametrize("route", ["direct", "serialized"])
def test_forked_workers(bfv_context, rng, monkeypatch, route):
    """primitives.parallel forks one worker per CRT prime: each uses the kernel (and, on the
    serialised route, its own scratch file) and the stitched result equals SEAL's loop."""
    from primitives import parallel
    monkeypatch.setattr(coefficients, "ROUTE", route)
    x = rng.integers(-4, 5, size=(3, 12))
    w = rng.integers(-6, 7, size=(12, 5))
    enc = P.encrypt(bfv_context, x, bound=4)
    monkeypatch.setattr(linear, "KERNEL", "coefficients")
    fast = parallel.map_parts(lambda t: P.matmul(t, w), enc, workers=2)
    monkeypatch.setattr(linear, "KERNEL", "seal")
    reference = P.matmul(enc, w)
    assert_same_ciphertexts(fast, reference)
    np.testing.assert_array_equal(P.decrypt(bfv_context, fast), x @ w)
