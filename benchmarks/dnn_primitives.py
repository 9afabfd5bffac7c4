"""The foundation's acceptance run: a 784 -> 30 -> square -> 10 network written with
primitives ops, on a batch of random inputs, with parameters from select_parameters.

BFV: integer inputs in [0, 15] and weights in [-7, 7]; the decryption must equal numpy's
integer result exactly. CKKS: inputs in [0, 1], Gaussian weights; the decryption must agree
with numpy float64 within the stated tolerance and on every argmax. Times each phase.

Usage: python benchmarks/dnn_primitives.py [--batch 4096] [--scheme bfv|ckks|both] [--quick]
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402
from benchmarks._common import DEFAULT_OUTPUT, machine, markdown_table, peak_memory_mb, write_results  # noqa: E402

CKKS_TOLERANCE = 1e-3  # absolute, on outputs of magnitude ~1e1


def timed(phases, name, function):
    start = time.perf_counter()
    result = function()
    phases[name] = time.perf_counter() - start
    return result


def network(x, w1, w2, b1, b2):
    """The network, written once: runs on numpy arrays and on encrypted tensors alike."""
    return P.matmul(P.square(P.matmul(x, w1, b1)), w2, b2)


def encrypted_run(params, x, bound, weights, phases):
    """Keys, encryption under the public context, the server forward layer by layer, decryption.

    Returns (decrypted outputs, BFV noise budget left in bits, server forward seconds).
    """
    w1, w2, b1, b2 = weights
    client = timed(phases, "keygen", lambda: P.Context(params))
    server = client.public()
    enc = timed(phases, "encrypt", lambda: P.encrypt(server, x, bound=bound))
    start = time.perf_counter()
    h = timed(phases, "dense 784->hidden", lambda: P.matmul(enc, w1, b1))
    h = timed(phases, "square", lambda: P.square(h))
    out = timed(phases, "dense hidden->10", lambda: P.matmul(h, w2, b2))
    forward = time.perf_counter() - start
    decrypted = timed(phases, "decrypt", lambda: P.decrypt(client, out))
    return decrypted, out.noise_budget(client) if params.scheme == "bfv" else None, forward


def worst_case_bound(input_bound, w1, w2, b1, b2):
    """Largest |value| any intermediate can take (what a discretised model proves)."""
    hidden = np.abs(w1).astype(object).T.dot(np.full(w1.shape[0], input_bound, dtype=object)) + np.abs(b1).astype(object)
    squared = hidden * hidden
    out = np.abs(w2).astype(object).T.dot(squared) + np.abs(b2).astype(object)
    return int(max(max(hidden), max(squared), max(out)))


def run_bfv(batch, hidden, rng):
    x = rng.integers(0, 16, size=(batch, 784))
    w1, w2 = rng.integers(-7, 8, size=(784, hidden)), rng.integers(-7, 8, size=(hidden, 10))
    b1, b2 = rng.integers(-50, 50, size=hidden), rng.integers(-50, 50, size=10)
    max_value = worst_case_bound(15, w1, w2, b1, b2)
    linear_bits = math.log2(max(np.abs(w1).sum(axis=0).max(), np.abs(w2).sum(axis=0).max()))
    phases = {}
    params = timed(phases, "select_parameters", lambda: P.select_parameters(
        "bfv", depth=1, max_value=max_value, linear_bits=linear_bits, batch_size=batch))
    decrypted, budget, forward = encrypted_run(params, x, 15, (w1, w2, b1, b2), phases)
    expected = network(x.astype(object), w1, w2, b1, b2)
    exact = bool(np.array_equal(decrypted.astype(object), expected))
    return {"scheme": "bfv", "batch": batch, "hidden": hidden, "parameters": repr(params),
            "poly_modulus_degree": params.poly_modulus_degree, "plain_moduli": list(params.plain_moduli),
            "max_value": max_value, "exact": exact, "noise_budget_left": budget,
            "server_forward_s": forward, "phases_s": phases, "peak_memory_mb": peak_memory_mb()}


def run_ckks(batch, hidden, rng):
    x = rng.uniform(0, 1, size=(batch, 784))
    w1, w2 = rng.normal(0, 0.05, size=(784, hidden)), rng.normal(0, 0.3, size=(hidden, 10))
    b1, b2 = rng.normal(0, 0.1, size=hidden), rng.normal(0, 0.1, size=10)
    bound = float(worst_case_bound(1, w1, w2, b1, b2))
    phases = {}
    params = timed(phases, "select_parameters", lambda: P.select_parameters(
        "ckks", depth=3, precision_bits=20, integer_bits=math.ceil(math.log2(bound)) + 1, batch_size=batch))
    decrypted, _, forward = encrypted_run(params, x, 1.0, (w1, w2, b1, b2), phases)
    expected = network(x, w1, w2, b1, b2)
    error = float(np.max(np.abs(decrypted - expected)))
    agreement = float(np.mean(decrypted.argmax(axis=1) == expected.argmax(axis=1)))
    return {"scheme": "ckks", "batch": batch, "hidden": hidden, "parameters": repr(params),
            "poly_modulus_degree": params.poly_modulus_degree, "max_abs_error": error,
            "max_output": float(np.max(np.abs(expected))), "within_tolerance": error <= CKKS_TOLERANCE,
            "tolerance": CKKS_TOLERANCE, "argmax_agreement": agreement, "server_forward_s": forward,
            "phases_s": phases, "peak_memory_mb": peak_memory_mb()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=30)
    parser.add_argument("--scheme", choices=["bfv", "ckks", "both"], default="both")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true", help="batch 64, hidden layer of 5")
    args = parser.parse_args(argv)
    batch, hidden = (64, 5) if args.quick else (args.batch, args.hidden)
    rng = np.random.default_rng(0)
    runs = []
    if args.scheme in ("bfv", "both"):
        runs.append(run_bfv(batch, hidden, rng))
    if args.scheme in ("ckks", "both"):
        runs.append(run_ckks(batch, hidden, rng))
    rows = [{"scheme": r["scheme"], "n": r["poly_modulus_degree"], "batch": r["batch"],
             **{k: v for k, v in r["phases_s"].items()}, "forward_s": r["server_forward_s"],
             "check": (f"exact={r['exact']}" if r["scheme"] == "bfv"
                       else f"max err {r['max_abs_error']:.2e}, argmax {100 * r['argmax_agreement']:.2f}%"),
             "peak_mb": r["peak_memory_mb"]} for r in runs]
    keys = ["select_parameters", "keygen", "encrypt", "dense 784->hidden", "square", "dense hidden->10", "decrypt"]
    columns = [("scheme", "scheme"), ("n", "n"), ("batch", "batch")] + [(k, f"{k} (s)") for k in keys] + \
        [("forward_s", "server forward (s)"), ("check", "check"), ("peak_mb", "peak MiB")]
    markdown = markdown_table(rows, columns)
    paths = write_results(args.output, "dnn_primitives", {"machine": machine(), "runs": runs}, markdown)
    print(markdown)
    print("wrote", *paths)
    if not all(r.get("exact", r.get("within_tolerance")) for r in runs):
        sys.exit("FAILED: an encrypted result disagreed with numpy")


if __name__ == "__main__":
    main()
