"""Exact plaintext-weight linear maps on raw ciphertext coefficients, through BLAS.

SEAL computes out_k = sum_j w_kj * ct_j with one ``multiply_plain`` and one ``add`` per tap.
Multiplying a ciphertext by an integer constant c is, coefficient by coefficient, the product
by c mod q_i on each coefficient prime q_i (BFV: coefficient form; CKKS: NTT form, where a
constant plaintext holds c in every NTT slot). So every output is an integer matrix product
over the inputs' coefficient arrays (:mod:`.coefficients`), reduced mod q_i: the same numbers
SEAL's loop produces, bit for bit.

The product runs as float64 matrix products, kept exact below 2^53:

* coefficients (< q_i < 2^61) are split into ``limbs`` of ``limb_bits`` bits, and the integer
  weights, if needed, into sign-magnitude ``digits`` of ``digit_bits`` bits, such that
  (largest row sum of |digit|) * (2^limb_bits - 1) < 2^53: every float64 sum is an exact
  integer. The split minimising the work is chosen per block of outputs (:func:`plan_for`).
* partial products are recombined in int64: directly when sum_j |w_kj| * (q - 1) < 2^63
  (one reduction mod q_i at the end); else, when sum_j |w_kj| <= 2^44, by subtracting q_i
  times the sum's quotient estimated in float64 (wrapping int64 arithmetic, exact: the
  remainder fits); else by Horner's rule over the shifts, reducing mod q_i after every shift
  of at most 62 - log2(q) bits.

Outputs are processed in blocks of consecutive rows, merged while converting their inputs
once pays for the zero-padded products (:func:`blocks_of`): a dense layer is one block, a
convolution one block per few neighbouring windows (all filters). Each block converts only its
inputs, and columns are processed in chunks so that the work arrays stay below
:data:`MEMORY_BUDGET_BYTES`. The direct route reads inputs in place and writes outputs in
place; the serialised route also holds input copies (up to half the budget: larger input
sets are processed in parts whose residues are accumulated mod q_i) and pending outputs (up to
half the budget per batch of rows).

The caller (:mod:`.linear`) keeps everything else in SEAL: bias (``add_plain``), zero rows
(fresh encryptions of zero), CKKS rescaling, noise and bound accounting.
"""

import contextlib
import ctypes
import glob
import os
from collections import OrderedDict

import numpy as np

from . import coefficients
from ...settings import integer_setting

MEMORY_BUDGET_BYTES = 512 * 2 ** 20   # float work arrays of one block and column chunk
CHUNK_COLUMNS = 4096                   # columns per chunk at least (if n allows) ...
CHUNK_BYTES = 2 ** 21                  # ... or more while a block's output chunk stays within 2 MiB
EXACT_BITS = 53                        # float64 integers are exact below 2^53
MAX_WEIGHT_BITS = 62
QUOTIENT_ROW_SUM_BITS = 44  # "quotient" reduction: the float64 estimate of sum/q errs by < 2^-4
BLAS_THREADS = None  # None: $SEALION_BLAS_THREADS, default 1; 0 leaves numpy's BLAS as configured

# Work per coefficient column in ns, measured at n=8192 on 2 cores (benchmarks/linear_kernel.py):
COST_INPUT = 1.3      # one input limb converted to float64
COST_PRODUCT = 0.06   # one float64 multiply-add of a matrix product (one BLAS thread)
COST_REDUCTION = 4.0  # one output row's partial product reduced mod q and stored
COST_BLOCK = 5.0      # Python overhead of one block (~0.3 ms at 65,536 columns)


class Unsupported(Exception):
    """The coefficient kernel cannot compute this combination; use SEAL's own arithmetic."""


# ----------------------------------------------------------------- plan
class Plan:
    """How one block's products are split to stay exact in float64.

    Attributes:
        digit_bits, digits: weights = sum_d 2^(d*digit_bits) * D_d, |D_d| < 2^digit_bits
            (sign-magnitude digits: every digit has the sign of its weight).
        limb_bits, limbs: coefficients = sum_l 2^(l*limb_bits) * X_l, 0 <= X_l < 2^limb_bits.
        mode: "float" (one product, reduced in float64: (sum |w| + 1) * q <= 2^53), "sum"
            (partial products summed in int64 and reduced once: sum |w| * (q - 1) < 2^63),
            "quotient" (the sum's quotient by q estimated in float64, the remainder computed
            in wrapping int64: sum |w| <= 2^44, any q) or "horner" (reduced after every shift).
        matrices: [(shift, float64 digit matrix)] of the non-zero digits.
        negative: per row, sum of |w| over negative weights (mode "sum": adding negative * q
            makes every sum non-negative before the unsigned reduction).
    """

    def __init__(self, digit_bits, digits, limb_bits, limbs, mode, matrices, negative):
        self.digit_bits, self.digits, self.limb_bits, self.limbs = digit_bits, digits, limb_bits, limbs
        self.mode, self.matrices, self.negative = mode, matrices, negative

    def describe(self):
        return (f"{len(self.matrices)} weight digit(s) of {self.digit_bits} bits x {self.limbs} limb(s) "
                f"of {self.limb_bits} bits, {self.mode} reduction")


def _largest_limb_bits(row_sum):
    """Largest b with row_sum * (2^b - 1) < 2^53 (0 if none)."""
    if row_sum == 0:
        return 64
    b = 0
    while row_sum * ((1 << (b + 1)) - 1) < (1 << EXACT_BITS):
        b += 1
    return b


def plan_for(weights, max_modulus):
    """The cheapest exact split for the integer matrix ``weights`` (int64, rows x taps).

    Args:
        weights: int64 array, |w| < 2^62.
        max_modulus: the largest coefficient prime q_i (coefficients are below it).
    """
    rows, taps = weights.shape
    coefficient_bits = int(max_modulus - 1).bit_length()
    magnitude = np.abs(weights)
    sign = np.sign(weights)
    row_sum = _exact_max_row_sum(magnitude)
    weight_bits = max(int(magnitude.max()).bit_length(), 1) if magnitude.size else 1
    best = None
    for digits in range(1, min(weight_bits, 8) + 1):
        digit_bits = -(-weight_bits // digits)
        mask = (1 << digit_bits) - 1
        parts = [(magnitude >> (d * digit_bits)) & mask for d in range(digits)]
        digit_sum = max(_exact_max_row_sum(p) for p in parts)
        limb_bits = min(_largest_limb_bits(digit_sum), coefficient_bits)
        if limb_bits < 1:
            continue
        limbs = -(-coefficient_bits // limb_bits)
        limb_bits = -(-coefficient_bits // limbs)  # balanced limbs, same count
        nonzero = [d for d, p in enumerate(parts) if p.any()]
        # ns per column: limb conversion, products, one reduction per partial product and row
        cost = (limbs * taps * COST_INPUT + len(nonzero) * rows * taps * limbs * COST_PRODUCT
                + len(nonzero) * limbs * rows * COST_REDUCTION)
        if best is None or cost < best[0]:
            best = (cost, digits, digit_bits, limbs, limb_bits, parts, nonzero)
    if best is None:
        raise Unsupported("no exact float64 split for these weights")
    _, digits, digit_bits, limbs, limb_bits, parts, nonzero = best
    matrices = [(d * digit_bits, (sign * parts[d]).astype(np.float64)) for d in nonzero]
    if len(matrices) == 1 and limbs == 1 and matrices[0][0] == 0 and (row_sum + 1) * max_modulus <= 1 << EXACT_BITS:
        mode = "float"
    elif row_sum * (max_modulus - 1) < 1 << 63:
        mode = "sum"
    elif row_sum <= 1 << QUOTIENT_ROW_SUM_BITS:
        mode = "quotient"
    else:
        mode = "horner"
    negative = np.array([_exact_max_row_sum(np.where(weights[r:r + 1] < 0, magnitude[r:r + 1], 0))
                         for r in range(rows)], dtype=np.uint64) if mode == "sum" else None
    return Plan(digit_bits, digits, limb_bits, limbs, mode, matrices, negative)


def _exact_max_row_sum(magnitude):
    """max_k sum_j |w_kj| without int64 overflow (rows summed in two halves of bits)."""
    if magnitude.size == 0:
        return 0
    low = (magnitude & ((1 << 31) - 1)).sum(axis=1)
    high = (magnitude >> 31).sum(axis=1)
    return max(int(h) * (1 << 31) + int(lo) for h, lo in zip(high.tolist(), low.tolist()))


# ----------------------------------------------------------------- blocks of rows
def block_cost(inputs, rows, limbs=2):
    """Estimated work (ns per column) of a block: convert its inputs, multiply, overhead."""
    return inputs * limbs * COST_INPUT + rows * inputs * limbs * COST_PRODUCT + COST_BLOCK


def blocks_of(indptr, indices, rows):
    """Group consecutive ``rows`` into blocks that share inputs, when sharing pays.

    A row joins the current block if converting the union of their inputs once and
    multiplying by the zero-padded weights costs less than a block of its own
    (:func:`block_cost`): a dense layer is one block, a convolution merges neighbouring
    windows, a pooling keeps one block per output. Returns a list of (row list, sorted union
    of input indices).
    """
    blocks, current, union = [], [], None
    for k in rows:
        taps = np.unique(indices[indptr[k]:indptr[k + 1]])
        if current:
            merged = np.union1d(union, taps)
            if (block_cost(merged.size, len(current) + 1)
                    <= block_cost(union.size, len(current)) + block_cost(taps.size, 1)):
                current.append(k)
                union = merged
                continue
            blocks.append((current, union))
        current, union = [k], taps
    if current:
        blocks.append((current, union))
    return blocks


# ----------------------------------------------------------------- coefficient sources
class _Source:
    """Input coefficient arrays: views (direct route) or an LRU cache of copies (serialised)."""

    def __init__(self, io, cts, budget):
        self.io, self.cts, self.budget = io, cts, budget
        self.cache, self.bytes = OrderedDict(), 0

    def get(self, j):
        array = self.cache.get(j)
        if array is not None:
            self.cache.move_to_end(j)
            return array
        array = self.io.read(self.cts[j])
        if array.dtype != np.uint64:
            raise Unsupported("coefficients are not uint64")
        self.cache[j] = array
        if not self.io.direct:
            self.bytes += array.nbytes
            while self.bytes > self.budget and len(self.cache) > 1:
                _, old = self.cache.popitem(last=False)
                self.bytes -= old.nbytes
        return array


# ----------------------------------------------------------------- BLAS threads
def blas_threads_setting():
    """Threads for the kernel's matrix products: :data:`BLAS_THREADS`, else
    $SEALION_BLAS_THREADS, else 1 (0: numpy's BLAS as configured).

    One thread by default: SEAL is single-threaded and sealion spreads CRT primes and groups
    over processes (:mod:`primitives.parallel`), one per core; a second BLAS thread per process
    then competes for the same cores, and a multi-threaded BLAS stalls when one of its
    threads is descheduled (measured: up to 10x slower small products on 2 busy cores).
    """
    return integer_setting("SEALION_BLAS_THREADS", 1, minimum=0, value=BLAS_THREADS)


_OPENBLAS = []


def _openblas():
    """(get, set) thread functions of the OpenBLAS numpy bundles, or None."""
    if not _OPENBLAS:
        found = None
        folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", "_64_", ""):
                    get = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                    put = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                    if get is not None and put is not None:
                        found = (get, put)
                        break
                if found:
                    break
            if found:
                break
        _OPENBLAS.append(found)
    return _OPENBLAS[0]


@contextlib.contextmanager
def blas_threads(threads):
    """Run the block with ``threads`` BLAS threads (0 or no OpenBLAS found: unchanged)."""
    functions = _openblas() if threads else None
    if functions is None:
        yield
        return
    get, put = functions
    before = get()
    if before == threads:
        yield
        return
    put(threads)
    try:
        yield
    finally:
        put(before)


# ----------------------------------------------------------------- the kernel
def combine(component, cts, indptr, indices, weights, scale=None, io=None, budget=None):
    """Return [sum_j weights_kj * cts[j] for every row k] as new ciphertexts, exactly.

    Args:
        component: the SEAL component (:class:`~primitives.context.SealComponent`).
        cts: the input ciphertexts (one component and group), all at one parms_id.
        indptr, indices, weights: CSR rows; weights are integers (|w| < 2^62), used as they
            are (mod each coefficient prime).
        scale: the outputs' recorded scale (CKKS; default: the inputs' scale).
        io: a :class:`~.coefficients.CoefficientIO` (default: the component's configured one).
        budget: bytes of extra memory for work arrays (default :data:`MEMORY_BUDGET_BYTES`).

    Returns:
        A list with one ciphertext per row; None for rows without a non-zero weight (SEAL
        refuses all-zero "transparent" ciphertexts: the caller encrypts a zero instead).

    Raises:
        Unsupported: inputs at different levels, scales or forms, weights beyond 2^62, or no
            working coefficient route.
    """
    io = io or coefficients.io_for(component)
    if io is None:
        raise Unsupported("no working coefficient route for this SEAL component")
    budget = budget or MEMORY_BUDGET_BYTES
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    weights = _as_int64(weights)
    rows = len(indptr) - 1
    keep = weights != 0
    if not keep.all():
        row_of_entry = np.repeat(np.arange(rows), np.diff(indptr))
        counts = np.bincount(row_of_entry[keep], minlength=rows)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        indices, weights = indices[keep], weights[keep]
    outputs = [None] * rows
    live = [k for k in range(rows) if indptr[k + 1] > indptr[k]]
    if not live:
        return outputs
    used = np.unique(indices)
    meta = _common_metadata(component, [cts[j] for j in used.tolist()])
    sizes = np.zeros(len(cts), dtype=np.int64)
    sizes[used] = [cts[j].size() for j in used.tolist()]
    moduli = coefficients.level_moduli(component, meta["parms_id"])
    source = _Source(io, cts, budget // 2)
    out_scale = meta["scale"] if scale is None else scale
    with blas_threads(blas_threads_setting()):
        for block_rows, _ in blocks_of(indptr, indices, live):
            for sub_rows in _row_batches(block_rows, io, meta, sizes, budget):
                _run_block(io, source, sub_rows, indptr, indices, weights, sizes, moduli, meta, out_scale,
                           budget, outputs)
    return outputs


def _as_int64(weights):
    weights = np.asarray(weights)
    if weights.dtype.kind == "O":
        if weights.size and max(abs(int(w)) for w in weights.tolist()) >= 1 << MAX_WEIGHT_BITS:
            raise Unsupported("weights beyond 2^62")
        return weights.astype(np.int64)
    if weights.dtype.kind not in "iu":
        raise Unsupported("the coefficient kernel multiplies by integers")
    weights = weights.astype(np.int64)
    if weights.size and int(np.abs(weights).max()) >= 1 << MAX_WEIGHT_BITS:
        raise Unsupported("weights beyond 2^62")
    return weights


def _common_metadata(component, cts):
    first = cts[0]
    meta = {"parms_id": list(first.parms_id()), "ntt": first.is_ntt_form(), "scale": first.scale,
            "n": first.poly_modulus_degree(), "L": first.coeff_modulus_size()}
    for ct in cts[1:]:
        if (list(ct.parms_id()) != meta["parms_id"] or ct.is_ntt_form() != meta["ntt"]
                or ct.scale != meta["scale"]):
            raise Unsupported("inputs differ in level, NTT form or scale")
    if any(ct.size() < 2 for ct in cts):
        raise Unsupported("empty ciphertexts")
    return meta


def _row_batches(block_rows, io, meta, sizes, budget):
    """Split a block so that pending outputs (serialised route) stay within the budget."""
    if io.direct:
        return [block_rows]
    per_row = 8 * meta["L"] * meta["n"] * int(max(sizes))
    most = max(1, (budget // 2) // per_row)
    return [block_rows[i:i + most] for i in range(0, len(block_rows), most)]


def _run_block(io, source, rows, indptr, indices, weights, sizes, moduli, meta, out_scale, budget, outputs):
    L, n = meta["L"], meta["n"]
    union = np.unique(np.concatenate([indices[indptr[k]:indptr[k + 1]] for k in rows]))
    position = {j: i for i, j in enumerate(union.tolist())}
    dense = np.zeros((len(rows), union.size), dtype=np.int64)
    for r, k in enumerate(rows):
        start, stop = indptr[k], indptr[k + 1]
        dense[r, [position[j] for j in indices[start:stop].tolist()]] = weights[start:stop]
    row_sizes = [int(sizes[indices[indptr[k]:indptr[k + 1]]].max()) for k in rows]
    columns = max(row_sizes) * L * n
    buffers = []
    for k, size in zip(rows, row_sizes):
        ct, buffer = io.allocate(meta["parms_id"], size, meta["ntt"], out_scale, n, L)
        outputs[k] = ct
        buffers.append((ct, buffer, size * L * n))
    parts = _input_parts(io, union, sizes, L, n, budget)
    for p, part in enumerate(parts):
        plan = plan_for(dense[:, part], max(moduli))
        arrays = [source.get(j).reshape(-1) for j in union[part].tolist()]
        chunk = _chunk_columns(len(part), len(rows), plan, columns, n, budget)
        work = _Workspace(plan, len(part), chunk)
        for c0 in range(0, columns, chunk):
            c1 = c0 + chunk
            q = moduli[(c0 // n) % L]
            residues = _residues(plan, work, arrays, c0, c1, q)
            for r, (_, buffer, length) in enumerate(buffers):
                if c0 >= length:
                    continue
                stop = min(c1, length)
                target = buffer.reshape(-1)[c0:stop]
                if p == 0:
                    target[...] = residues[r, :stop - c0]
                else:  # a later part of the inputs: add mod q
                    target += residues[r, :stop - c0].astype(np.uint64)
                    np.subtract(target, np.uint64(q), out=target, where=target >= np.uint64(q))
    for ct, buffer, _ in buffers:
        io.commit(ct, buffer)


def _input_parts(io, union, sizes, L, n, budget):
    """Index arrays into ``union``: all at once (direct), or parts whose copies fit the budget."""
    everything = np.arange(union.size)
    if io.direct:
        return [everything]
    per_input = 8 * L * n * int(max(sizes[union]))
    most = max(1, (budget // 2) // per_input)
    return [everything[i:i + most] for i in range(0, union.size, most)]


def _chunk_columns(taps, rows, plan, columns, n, budget):
    """Columns per chunk: a power of two (at least 256, at most n: it divides every polynomial's
    n x L columns) whose work arrays fit the budget, wide enough to amortise Python overhead
    and narrow enough to keep a block's outputs in cache."""
    per_column = 8 * (taps * plan.limbs + rows * len(plan.matrices) * (plan.limbs + 2) + 5 * rows)
    # keep one output block's chunk near CHUNK_BYTES (cache), at least CHUNK_COLUMNS wide
    wanted = max(CHUNK_COLUMNS, CHUNK_BYTES // (8 * rows))
    chunk = 256
    while chunk * 2 <= min(n, wanted) and chunk * 2 * per_column <= budget:
        chunk *= 2
    return min(chunk, columns)


class _Workspace:
    """Work arrays of one block, reused by every column chunk (no page faults per chunk)."""

    def __init__(self, plan, taps, width):
        self.limbs = np.empty((plan.limbs, taps, width), dtype=np.float64)
        self.scratch = np.empty(width, dtype=np.uint64)
        rows = plan.matrices[0][1].shape[0]
        self.stacked = (np.vstack([m for _, m in plan.matrices]) if len(plan.matrices) > 1
                        else plan.matrices[0][1])
        self.product = np.empty((rows * len(plan.matrices), width), dtype=np.float64)
        self.rows, self.width, self._quotient = rows, width, None

    def quotient_buffers(self):
        """(float64 estimate, int64 total, int64 term) arrays of rows x width, made once."""
        if self._quotient is None:
            shape = (self.rows, self.width)
            self._quotient = (np.empty(shape, dtype=np.float64), np.empty(shape, dtype=np.int64),
                              np.empty(shape, dtype=np.int64))
        return self._quotient


def _residues(plan, work, arrays, c0, c1, q):
    """sum_j w_kj * x_j[c0:c1] mod q as uint64 (rows x columns), exactly; q is the prime of
    these columns (a chunk never straddles two coefficient primes)."""
    width = c1 - c0
    mask = np.uint64((1 << plan.limb_bits) - 1)
    for t, array in enumerate(arrays):
        available = max(0, min(c1, array.size) - c0)
        if available < width:
            work.limbs[:, t, available:] = 0.0
        if not available:
            continue
        segment = array[c0:c0 + available]
        for l in range(plan.limbs):
            row = work.limbs[l, t, :available]
            if plan.limbs == 1:
                row[...] = segment
            elif l == 0:
                np.bitwise_and(segment, mask, out=row, casting="unsafe")
            elif l == plan.limbs - 1:
                np.right_shift(segment, np.uint64(l * plan.limb_bits), out=row, casting="unsafe")
            else:
                part = work.scratch[:available]
                np.right_shift(segment, np.uint64(l * plan.limb_bits), out=part)
                np.bitwise_and(part, mask, out=row, casting="unsafe")
    rows = work.rows
    if plan.mode == "float":  # float64 residues: the caller's store converts them
        np.matmul(work.stacked, work.limbs[0], out=work.product)
        return _float_remainder(work.product, q)
    if plan.mode == "quotient":
        return _quotient_residues(plan, work, q)
    terms = {}  # shift -> int64 sum of the partial products with that shift
    for l in range(plan.limbs):
        np.matmul(work.stacked, work.limbs[l], out=work.product)
        for i, (digit_shift, _) in enumerate(plan.matrices):
            part = work.product[i * rows:(i + 1) * rows].astype(np.int64)
            shift = digit_shift + l * plan.limb_bits
            if shift in terms:
                terms[shift] += part
            else:
                terms[shift] = part
    q_unsigned = np.uint64(q)
    if plan.mode == "sum":
        total = None
        for shift, part in terms.items():
            if shift:
                np.left_shift(part, shift, out=part)
            total = part if total is None else np.add(total, part, out=total)
        total = total.view(np.uint64)
        total += (plan.negative * q_unsigned)[:, None]  # wraps mod 2^64 to the true, non-negative sum
        return np.remainder(total, q_unsigned, out=total)
    # Horner over the shifts, every partial sum made non-negative by a multiple of q first
    step = 62 - int(q - 1).bit_length()
    offset = np.uint64(-(-(1 << 58) // q) * q)  # |partial sums| < 2^57 (at most 16 terms of 2^53)
    acc, previous = None, None
    for shift in sorted(terms, reverse=True):
        part = terms[shift].view(np.uint64)
        part += offset
        np.remainder(part, q_unsigned, out=part)
        if acc is None:
            acc = part
        else:
            _shift_mod(acc, previous - shift, step, q_unsigned)
            acc += part
            np.subtract(acc, q_unsigned, out=acc, where=acc >= q_unsigned)
        previous = shift
    _shift_mod(acc, previous, step, q_unsigned)
    return acc


def _quotient_residues(plan, work, q):
    """sum_s P_s * 2^s mod q for the partial products P_s, without a division per shift.

    T = sum_s P_s * 2^s may exceed 2^64 (58-bit primes with 29-bit limbs: 2^82). Its quotient
    k = floor(T / q) is estimated in float64 from the exact float products; |T| / q <= sum |w|
    <= 2^44, so the estimate errs by less than 2^-4 and T - k*q lies in (-q, 2q). That
    remainder is computed modulo 2^64 (int64 arithmetic wraps) and is exact because its true
    value fits in int64; one conditional add or subtract of q makes it canonical.
    """
    rows = work.rows
    estimate, total, term = work.quotient_buffers()
    q_signed = np.int64(q)
    first = True
    for l in range(plan.limbs):
        np.matmul(work.stacked, work.limbs[l], out=work.product)
        for i, (digit_shift, _) in enumerate(plan.matrices):
            block = work.product[i * rows:(i + 1) * rows]
            shift = digit_shift + l * plan.limb_bits
            factor = float(2 ** shift) / q
            if first:
                np.multiply(block, factor, out=estimate)
            else:
                estimate += block * factor
            if shift >= 64:   # P_s * 2^s = 0 mod 2^64
                if first:
                    total.fill(0)
                first = False
                continue
            target = total if first else term
            np.copyto(target, block, casting="unsafe")   # exact: |P_s| < 2^53
            if shift:
                np.left_shift(target, shift, out=target)  # wraps mod 2^64
            if not first:
                total += term
            first = False
    np.floor(estimate, out=estimate)
    np.copyto(term, estimate, casting="unsafe")          # k, |k| <= 2^44 + 1
    term *= q_signed                                     # k * q mod 2^64
    total -= term                                        # T - k*q, exact: in (-q, 2q)
    np.add(total, q_signed, out=total, where=total < 0)
    np.subtract(total, q_signed, out=total, where=total >= q_signed)
    return total.view(np.uint64)


def _float_remainder(values, q):
    """values mod q in place, for exact integers with |values| + q <= 2^53."""
    q = float(q)
    quotient = np.multiply(values, 1.0 / q)
    np.floor(quotient, out=quotient)
    np.multiply(quotient, -q, out=quotient)
    values += quotient  # exact: both are integers below 2^53; the result lies in (-q, 2q)
    np.add(values, q, out=values, where=values < 0)
    np.subtract(values, q, out=values, where=values >= q)
    return values


def _shift_mod(acc, bits, step, q):
    """acc = acc * 2^bits mod q in place (uint64), for 0 <= acc < q <= 2^(62 - step)."""
    while bits > 0:
        s = min(bits, step)
        np.left_shift(acc, s, out=acc)
        np.remainder(acc, q, out=acc)
        bits -= s
