"""Encrypted linear layers: SEAL's multiply_plain/add loop vs the coefficient kernel.

Layers of SEALion's MNIST networks at n=8192, full batches (8,192 samples: one BFV group,
two CKKS groups), parameters from ``select_parameters`` for the network each layer belongs to:

* DNN (depth 1: dense, square, dense): Dense 784 -> 30 and 784 -> 100, inputs in [0, 15],
  weights in [-7, 7].
* CNN (depth 2: conv, square, dense, square, dense): Conv 5x5, stride 2, padding "same",
  1 -> 16 channels on 28x28 (3,136 outputs), weights in [-3, 3]; Dense 3136 -> 100 on the
  squared convolution outputs (three-polynomial ciphertexts: relinearisation is deferred),
  weights in [-3, 3].
* CKKS Dense 784 -> 100 (depth 1, Gaussian weights): weights round(w * p) with p ~ 2^36 take
  the kernel's digit split and Horner reduction.
* crossover: small dense layers, a sum pool, a sum and a small convolution (one CRT prime),
  to check where the ``auto`` rule (:data:`primitives.backends.encrypted.linear.CROSSOVER`)
  switches kernels.

Each layer runs ``apply_linear_map`` (through the public ops) with ``SEALION_LINEAR_KERNEL``
= seal and = coefficients on the same input tensor: medians of ``--repeats`` runs, plus the
coefficient kernel once with two BLAS threads and once through the serialised route. The
outputs of both kernels are compared ciphertext by ciphertext (coefficients, level, scale),
and BFV decryptions against numpy's integers. "extra MiB" is the peak resident memory during
the first call above the resident memory before it (sampled every 2 ms; includes the outputs;
later calls reuse SEAL's memory pool). Each kernel runs in a child process forked from the
same state (inputs encrypted, coefficient routes validated), so neither inherits the other's
freed buffers.

Usage:
    python benchmarks/linear_kernel.py [--cases dense30 dense100 conv dense3136 ckks100 crossover]
                                       [--repeats 3] [--output DIR] [--quick]
"""

import argparse
import contextlib
import hashlib
import math
import os
import pickle
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402
from benchmarks._common import (DEFAULT_OUTPUT, machine, machine_line, markdown_table,  # noqa: E402
                                peak_memory_mb, write_results)
from primitives.backends.encrypted import (coefficient_linear, coefficients, linear,  # noqa: E402
                                           seal_ops)

BATCH = 8192
CASES = ("dense30", "dense100", "conv", "dense3136", "ckks100", "crossover")
# small layers around the auto kernel's crossover: (name, feature shape, layer)
CROSSOVER_LAYERS = [
    ("Dense 3->1, w in [-7, 7]", (3,), ("dense", 3, 1, 7)),
    ("Dense 4->4, w in [-7, 7]", (4,), ("dense", 4, 4, 7)),
    ("Dense 6->4, w in [-7, 7]", (6,), ("dense", 6, 4, 7)),
    ("Dense 10->10, w in [-7, 7]", (10,), ("dense", 10, 10, 7)),
    ("Dense 10->10, w in {0, 1}", (10,), ("dense01", 10, 10, 1)),
    ("Dense 20->10, w in {0, 1}", (20,), ("dense01", 20, 10, 1)),
    ("Dense 64->8, w in {0, 1}", (64,), ("dense01", 64, 8, 1)),
    ("Sum pool 2x2 on 8x8x4", (8, 8, 4), ("pool",)),
    ("Sum over 16 of (16, 16)", (16, 16), ("sum",)),
    ("Conv 3x3 1->4 on 8x8, same", (8, 8, 1), ("conv", 1, 4)),
]
PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident memory (MiB) above the level at entry, sampled by a thread."""

    def __init__(self, interval=0.002):
        self.interval, self.extra_mb = interval, 0.0

    @staticmethod
    def resident():
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * PAGE

    def __enter__(self):
        self.base = self.peak = self.resident()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.resident())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.resident())
        self.extra_mb = (self.peak - self.base) / 2 ** 20


def run_kernel(kernel, function, x, repeats, route=None, blas=None, check=None):
    """Run ``function(x)`` ``repeats`` times under ``kernel`` in a forked child process.

    Every kernel starts from the same memory state (the parent's: inputs only), so SEAL's
    memory pool holds no free buffers of an earlier kernel's runs. Returns the child's facts:
    median wall time, extra resident memory of the first run, a SHA-256 digest of the outputs
    (level, size, scale, NTT form and coefficients of every ciphertext) and ``check(result)``.
    """
    for component in x.context.components:  # validate the routes once, as a long-lived server does
        coefficients.io_for(component, route)
    coefficient_linear._openblas()  # noqa: SLF001 - find the BLAS library once, before forking
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            linear.KERNEL, coefficients.ROUTE, coefficient_linear.BLAS_THREADS = kernel, route, blas
            times, extra = [], []
            result = None
            for run in range(repeats):
                result = None  # free the previous run's outputs (SEAL's pool reuses them)
                memory = PeakMemory() if run == 0 else contextlib.nullcontext()
                with memory:  # sampled in the first run only (the sampler thread costs time)
                    start = time.perf_counter()
                    result = function(x)
                    times.append(time.perf_counter() - start)
                if run == 0:
                    extra.append(memory.extra_mb)
                used = set(linear.last_kernels)
                if used != {kernel}:
                    raise RuntimeError(f"expected the {kernel} kernel, ran {used}")
            facts = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                     "runs_s": times, "extra_mb": extra[0],
                     "digest": digest(result), "check": check(result) if check else None}
            payload = pickle.dumps(("ok", facts))
        except BaseException as error:  # noqa: BLE001 - report to the parent
            payload = pickle.dumps(("error", repr(error)))
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"the {kernel} child died without a result (out of memory?)")
    status, facts = pickle.loads(data)
    if status != "ok":
        raise RuntimeError(f"the {kernel} child failed: {facts}")
    return facts


def digest(tensor):
    """SHA-256 over every output ciphertext: level, size, scale, NTT form and coefficients
    (read directly: the route is validated). The benchmark layers have no all-zero rows, whose
    outputs SEAL would encrypt afresh."""
    hasher = hashlib.sha256()
    for (c, _, _), ct in np.ndenumerate(tensor.data):
        hasher.update(repr((list(ct.parms_id()), ct.size(), ct.scale, ct.is_ntt_form())).encode())
        hasher.update(coefficients.io_for(tensor.context.components[c]).read(ct).tobytes())
    return hasher.hexdigest()


def transfer_costs(tensor, count=50):
    """ms per ciphertext: read (direct: a validated view, no copy; serialised: save + decode)
    and write (allocate, fill, hand to SEAL) through both routes."""
    component = tensor.context.components[0]
    cts = list(tensor.data[0, 0, :count])
    arrays = [coefficients.io_for(component, "serialized").read(ct) for ct in cts]
    facts = {}
    for route in ("direct", "serialized"):
        io = coefficients.io_for(component, route)
        start = time.perf_counter()
        for ct in cts:
            io.read(ct)
        facts[f"read {route} (ms/ct)"] = 1000 * (time.perf_counter() - start) / len(cts)
        like = cts[0]
        start = time.perf_counter()
        for array in arrays:
            out, buffer = io.allocate(like.parms_id(), like.size(), like.is_ntt_form(), like.scale,
                                      like.poly_modulus_degree(), like.coeff_modulus_size())
            buffer.reshape(-1)[...] = array.reshape(-1)
            io.commit(out, buffer)
        facts[f"write {route} (ms/ct)"] = 1000 * (time.perf_counter() - start) / len(cts)
    return facts


def layer_plan(tensor, linear_map):
    """The kernel's first block plan, for the table."""
    component = tensor.context.components[0]
    ct = tensor.data[0, 0, 0]
    moduli = coefficients.level_moduli(component, ct.parms_id())
    rows = np.arange(min(linear_map.out_size, 16))
    indptr = linear_map.indptr
    taps = linear_map.indices[indptr[0]:indptr[len(rows)]]
    union = np.unique(taps)
    dense = np.zeros((len(rows), union.size), dtype=np.int64)
    weights = linear_map.weights
    if tensor.scheme == "bfv":
        t = component.plain_modulus
        weights = np.sign(weights) * (np.abs(weights) % t)
    else:
        weights = np.round(weights * component.level_prime(ct)).astype(np.int64)
    for r in rows:
        idx = np.searchsorted(union, linear_map.indices[indptr[r]:indptr[r + 1]])
        dense[r, idx] = weights[indptr[r]:indptr[r + 1]]
    blocks = coefficient_linear.blocks_of(indptr, linear_map.indices, range(linear_map.out_size))
    return coefficient_linear.plan_for(dense, max(moduli)).describe(), len(blocks)


# ----------------------------------------------------------------- the layers
def dnn_parameters(hidden, quick):
    x = P.BoundTensor(15, shape=(784,))
    out = P.matmul(P.square(P.matmul(x, np.full((784, hidden), 7))), np.full((hidden, 10), 7))
    return P.select_parameters("bfv", depth=1, max_value=out.max, linear_bits=math.log2(784 * 7),
                               batch_size=BATCH if not quick else 64)


def cnn_parameters(quick):
    x = P.BoundTensor(15, shape=(28, 28, 1))
    h = P.square(P.conv2d(x, np.full((5, 5, 1, 16), 3), strides=2, padding="same"))
    h = P.square(P.matmul(P.reshape(h, (3136,)), np.full((3136, 100), 3)))
    out = P.matmul(h, np.full((100, 10), 3))
    return P.select_parameters("bfv", depth=2, max_value=out.max, linear_bits=math.log2(3136 * 3),
                               batch_size=BATCH if not quick else 64)


def bfv_images(context, rng, batch):
    x = rng.integers(0, 16, size=(batch, 28, 28, 1))
    return x, P.encrypt(context, x, bound=15)


def squared_in_place(tensor):
    """``square`` ciphertext by ciphertext, freeing each input as it goes (memory)."""
    squared = P.square(P.EncryptedTensor(tensor.context, tensor.data[:, :, :1], (1,), tensor.batch_size,
                                         tensor.bound[:1], tensor.noise_used_bits, tensor.depth_used))
    for (c, g, k), ct in np.ndenumerate(tensor.data):
        tensor.data[c, g, k] = seal_ops.multiply(tensor.context.components[c], ct, ct, relinearize=False)
    bound = np.array([b * b for b in tensor.bound.tolist()], dtype=object)
    return P.EncryptedTensor(tensor.context, tensor.data, tensor.shape, tensor.batch_size, bound,
                             squared.noise_used_bits, squared.depth_used)


def measure(name, context, x, function, linear_map, expected, repeats):
    """Both kernels on ``x``, each in its own child process; the row of the table."""
    def check(result):
        decrypted = P.decrypt(context, result)
        if x.scheme == "bfv":
            return bool(np.array_equal(decrypted.astype(object), expected))
        return float(np.max(np.abs(decrypted - expected)))

    print(f"{name}: coefficient kernel ...", flush=True)
    fast = run_kernel("coefficients", function, x, repeats, check=check)
    two_threads = run_kernel("coefficients", function, x, 1, blas=0)
    serialized = run_kernel("coefficients", function, x, 1, route="serialized")
    print(f"{name}: SEAL loop ...", flush=True)
    seal = run_kernel("seal", function, x, repeats)
    plan, blocks = layer_plan(x, linear_map)
    ct = x.data[0, 0, 0]
    return {"layer": name, "scheme": x.scheme, "parameters": repr(context.parameters).splitlines()[0],
            "plain_moduli": list(context.parameters.plain_moduli) if x.scheme == "bfv" else None,
            "components": len(context.components), "groups": x.groups, "inputs": x.size,
            "outputs": linear_map.out_size, "taps": int(linear_map.indices.size),
            "input_polynomials": ct.size(), "coefficient_primes": ct.coeff_modulus_size(),
            "seal_s": seal["median_s"], "coefficients_s": fast["median_s"],
            "speed_up": seal["median_s"] / fast["median_s"],
            "coefficients_2_blas_threads_s": two_threads["median_s"],
            "coefficients_serialized_route_s": serialized["median_s"],
            "seal_extra_mb": seal["extra_mb"], "coefficients_extra_mb": fast["extra_mb"],
            "serialized_extra_mb": serialized["extra_mb"],
            "seal_runs": seal, "coefficients_runs": fast, "two_threads_run": two_threads,
            "serialized_run": serialized,
            "identical_ciphertexts": len({seal["digest"], fast["digest"], two_threads["digest"],
                                          serialized["digest"]}) == 1,
            "decryption_check": fast["check"],
            "plan": plan, "blocks": blocks, "route": coefficients.io_for(context.components[0]).route}


def run_cases(cases, repeats, quick, rng):
    rows, transfers = [], {}
    batch = 64 if quick else BATCH
    for hidden in (30, 100):
        if f"dense{hidden}" not in cases:
            continue
        context = P.Context(dnn_parameters(hidden, quick))
        images, enc = bfv_images(context, rng, batch)
        x, flat = images.reshape(batch, 784), P.reshape(enc, (784,))
        w = rng.integers(-7, 8, size=(784, hidden))
        b = rng.integers(-50, 50, size=hidden)
        transfers.setdefault("BFV n=8192, L=4, 2 polynomials", transfer_costs(flat))
        rows.append(measure(f"Dense 784->{hidden}", context, flat, lambda t: P.matmul(t, w, b),
                            _matmul_map(w, b), x.astype(object) @ w + b, repeats))
        del enc, flat
    if "conv" in cases or "dense3136" in cases:
        context = P.Context(cnn_parameters(quick))
        images, enc = bfv_images(context, rng, batch)
        k = rng.integers(-3, 4, size=(5, 5, 1, 16))
        kb = rng.integers(-20, 21, size=16)
        conv_map = _conv_map(k, kb)
        expected = P.conv2d(images, k, kb, strides=2, padding="same")
        if "conv" in cases:
            rows.append(measure("Conv 5x5/2 1->16 (28x28 -> 14x14x16)", context, enc,
                                lambda t: P.conv2d(t, k, kb, strides=2, padding="same"), conv_map,
                                expected, repeats))
        if "dense3136" in cases:
            linear.KERNEL = "coefficients"
            hidden = P.reshape(P.conv2d(enc, k, kb, strides=2, padding="same"), (3136,))
            linear.KERNEL = None
            del enc
            print("squaring 3,136 ciphertexts per CRT prime ...", flush=True)
            squared = squared_in_place(hidden)
            del hidden
            transfers.setdefault("BFV n=8192, L=4, 3 polynomials", transfer_costs(squared))
            w = rng.integers(-3, 4, size=(3136, 100))
            b = rng.integers(-50, 50, size=100)
            plain = expected.reshape(batch, 3136).astype(object) ** 2
            rows.append(measure("Dense 3136->100 (squared inputs)", context, squared,
                                lambda t: P.matmul(t, w, b), _matmul_map(w, b, 3136), plain @ w + b, repeats))
            del squared
    if "ckks100" in cases:
        params = P.select_parameters("ckks", depth=1, precision_bits=20, integer_bits=8,
                                     batch_size=batch)
        context = P.Context(params)
        x = rng.uniform(0, 1, size=(batch, 784))
        enc = P.encrypt(context, x)
        w = rng.normal(0, 0.05, size=(784, 100))
        b = rng.normal(0, 0.1, size=100)
        transfers.setdefault("CKKS n=8192, L=2, 2 polynomials (NTT form)", transfer_costs(enc))
        rows.append(measure("CKKS Dense 784->100", context, enc, lambda t: P.matmul(t, w, b),
                            _matmul_map(w, b), x @ w + b, repeats))
    return rows, transfers


def crossover_rows(repeats, rng, quick):
    """Both kernels on small layers (one CRT prime, n=8192): where does the kernel start to pay?"""
    from primitives import linear_maps
    context = P.Context(dnn_parameters(30, quick))
    rows = []
    for name, shape, layer in CROSSOVER_LAYERS:
        kind = layer[0]
        if kind in ("dense", "dense01"):
            _, m, p, top = layer
            w = rng.integers(0, 2, size=(m, p)) if kind == "dense01" else rng.integers(-top, top + 1, size=(m, p))
            function, linear_map = (lambda t, w=w: P.matmul(t, w)), linear_maps.matmul_map(shape, w)
        elif kind == "pool":
            function = lambda t: P.sum_pool2d(t, 2)  # noqa: E731
            linear_map = linear_maps.pool2d_map(shape, (2, 2), (2, 2), "valid", average=False)
        elif kind == "sum":
            function, linear_map = (lambda t: P.sum(t, axis=-1)), linear_maps.sum_map(shape, (1,))
        else:
            k = rng.integers(-3, 4, size=(3, 3, layer[1], layer[2]))
            function = lambda t, k=k: P.conv2d(t, k, padding="same")  # noqa: E731
            linear_map = linear_maps.conv2d_map(shape, k, None, (1, 1), "same")
        x = P.encrypt(context, rng.integers(0, 4, size=(64 if quick else BATCH,) + shape), bound=3)
        fast = run_kernel("coefficients", function, x, repeats)
        seal = run_kernel("seal", function, x, repeats)
        inputs = int(np.prod(shape))
        weights = linear_map.weights
        unit = int(np.count_nonzero((weights == 1) | (weights == -1)))
        weighted = linear_map.indices.size - unit + linear.UNIT_TAP_COST * unit
        rows.append({"layer": name, "inputs": inputs, "outputs": linear_map.out_size,
                     "taps": int(linear_map.indices.size), "unit_taps": unit,
                     "ratio": weighted / (inputs + linear_map.out_size),
                     "auto": "coefficients" if linear.use_coefficients(linear_map, "auto") else "seal",
                     "seal_ms": 1000 * seal["median_s"], "coefficients_ms": 1000 * fast["median_s"],
                     "speed_up": seal["median_s"] / fast["median_s"],
                     "identical_ciphertexts": seal["digest"] == fast["digest"]})
        print(f"{name}: {rows[-1]['speed_up']:.2f}x", flush=True)
    return rows


def _matmul_map(w, b, inputs=784):
    from primitives import linear_maps
    return linear_maps.matmul_map((inputs,), w, b)


def _conv_map(k, kb):
    from primitives import linear_maps
    return linear_maps.conv2d_map((28, 28, 1), k, kb, (2, 2), "same")


# ----------------------------------------------------------------- output
def crossover_markdown(rows):
    if not rows:
        return []
    columns = [("layer", "layer"), ("inputs", "inputs"), ("outputs", "outputs"), ("taps", "taps"),
               ("unit_taps", "taps of weight +-1"), ("ratio", "weighted taps / (inputs + outputs)"),
               ("auto", "auto picks"), ("seal_ms", "SEAL loop (ms)"), ("coefficients_ms", "coefficient kernel (ms)"),
               ("speed_up", "speed-up"), ("identical_ciphertexts", "identical ciphertexts")]
    return [f"Crossover: small layers, one CRT prime, n=8192, full batch; auto uses the coefficient kernel "
            f"when (taps - taps of weight +-1 + {linear.UNIT_TAP_COST} x taps of weight +-1) >= "
            f"{linear.CROSSOVER} x (inputs + outputs).", "", markdown_table(rows, columns), ""]


def to_markdown(rows, transfers, facts, repeats, crossover=()):
    columns = [("layer", "layer"), ("scheme", "scheme"), ("components", "CRT primes"),
               ("groups", "groups"), ("input_polynomials", "input polys"), ("taps", "taps"),
               ("seal_s", "SEAL loop (s)"), ("coefficients_s", "coefficient kernel (s)"),
               ("speed_up", "speed-up"), ("coefficients_2_blas_threads_s", "kernel, 2 BLAS threads (s)"),
               ("coefficients_serialized_route_s", "kernel, serialised route (s)"),
               ("seal_extra_mb", "SEAL extra MiB"), ("coefficients_extra_mb", "kernel extra MiB"),
               ("serialized_extra_mb", "serialised route extra MiB"),
               ("identical_ciphertexts", "identical ciphertexts"), ("decryption_check", "decryption check"),
               ("plan", "plan (first block)"), ("blocks", "blocks")]
    transfer_rows = [{"ciphertexts": k, **v} for k, v in transfers.items()]
    transfer_columns = [("ciphertexts", "ciphertexts")] + [(key, key) for key in
                                                          next(iter(transfers.values()), {})]
    notes = [f"- {r['layer']}: `{r['parameters']}`"
             + (f", t = {r['plain_moduli']}" if r["plain_moduli"] else "") + f"; route {r['route']}"
             for r in rows]
    return "\n".join([
        f"Encrypted linear layers at n=8192, full batch ({BATCH} samples); wall seconds, medians of "
        f"{repeats} runs (one run for the 2-thread and serialised-route columns), each kernel in a "
        "child process forked from the same state. The coefficient kernel uses one BLAS thread "
        "unless stated. \"extra MiB\": peak resident memory during the first call above the level "
        "before it (outputs included). \"identical ciphertexts\": SHA-256 of every output "
        "ciphertext equal across all runs of both kernels. \"decryption check\": BFV exact "
        "equality with numpy (True/False), CKKS max abs error.", "",
        markdown_table(rows, columns), "", *notes, "",
        *crossover_markdown(list(crossover)),
        "Coefficient transfer, ms per ciphertext (50 ciphertexts; read: direct = a checked view "
        "of SEAL's buffer, serialised = save + decompress; write = allocate + fill + hand to SEAL):",
        "", markdown_table(transfer_rows, transfer_columns), "",
        machine_line(facts) + f" Peak memory {peak_memory_mb():.0f} MiB (process)."])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per kernel (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="folder for the JSON and markdown")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 64, one repeat, small layers only")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
        args.cases = [c for c in args.cases if c in ("dense30", "conv", "crossover")]
    if args.repeats < 1:
        parser.error("--repeats must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    crossover = crossover_rows(args.repeats, rng, args.quick) if "crossover" in args.cases else []
    rows, transfers = run_cases(args.cases, args.repeats, args.quick, rng)
    facts = machine()
    facts["blas_threads_kernel"] = coefficient_linear.blas_threads_setting()
    markdown = to_markdown(rows, transfers, facts, args.repeats, crossover)
    data = {"machine": facts, "batch": 64 if args.quick else BATCH, "repeats": args.repeats,
            "crossover_setting": {"CROSSOVER": linear.CROSSOVER, "UNIT_TAP_COST": linear.UNIT_TAP_COST},
            "crossover": crossover, "results": rows, "transfers": transfers, "peak_memory_mb": peak_memory_mb()}
    paths = write_results(args.output, "linear_kernel", data, markdown)
    print(markdown)
    print("wrote", *paths)
    bad = [r["layer"] for r in rows if not r["identical_ciphertexts"]
           or (r["scheme"] == "bfv" and r["decryption_check"] is False)]
    bad += [r["layer"] for r in crossover if not r["identical_ciphertexts"]]
    if bad:
        sys.exit(f"FAILED: the kernels disagree on {bad}")


if __name__ == "__main__":
    main()
