"""The foundation's acceptance run: a 784 -> 30 -> square -> 10 network written with primitives
ops on a batch of random inputs, with parameters from select_parameters.

The three roles act in one process: the client generates keys, encrypts and serialises; the
server rebuilds the input under the public context (no secret key) and runs the network; the
client deserialises the result and decrypts it. Every phase is timed.

BFV: inputs are integers in [0, 15] (quantised pixels), weights in [-7, 7] and biases in
[-50, 50); max_value is the bound the bounds backend proves for every intermediate result
(output included), and the decryption must equal numpy's integer result exactly over the
whole batch. CKKS: inputs in [0, 1), Gaussian weights; integer_bits comes from the proven
bound and precision_bits=20, and the decryption must agree with numpy float64 within
2^-precision_bits absolute; relative error and argmax agreement are reported.

Usage:
    python benchmarks/dnn_primitives.py [--batch 4096] [--hidden 30] [--scheme bfv|ckks|both]
                                        [--output DIR] [--quick]
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402
from benchmarks._common import (DEFAULT_OUTPUT, machine, machine_line, markdown_table,  # noqa: E402
                                peak_memory_mb, timed, write_results)

INPUTS, OUTPUTS = 784, 10
BFV_INPUT_MAX = 15
CKKS_DEPTH = 3            # rescales on the longest path: dense, square, dense
CKKS_PRECISION_BITS = 20
PHASES = ("select_parameters", "keygen", "encrypt", "upload", "dense 784->hidden", "square",
          "dense hidden->10", "download", "decrypt")


def network(x, weights):
    """The network, written once: runs on numpy arrays, BoundTensors and encrypted tensors alike."""
    w1, b1, w2, b2 = weights
    return P.matmul(P.square(P.matmul(x, w1, b1)), w2, b2)


def proven_bounds(input_bound, weights):
    """Bounds on |value| of each layer's output, proved by the bounds backend (no data, no keys)."""
    w1, b1, w2, b2 = weights
    hidden = P.matmul(P.BoundTensor(input_bound, shape=(INPUTS,)), w1, b1)
    squared = P.square(hidden)
    return {"dense1": hidden.max, "square": squared.max, "output": P.matmul(squared, w2, b2).max}


def round_trip(tensor, context):
    """Serialise ``tensor`` and rebuild it under ``context`` (what crosses the wire); return (tensor, bytes)."""
    blob = tensor.serialize()
    return P.EncryptedTensor.from_bytes(blob, context), len(blob)


def encrypted_run(params, x, input_bound, weights):
    """Run the client / server / client flow; return (decrypted outputs, facts about the run)."""
    w1, b1, w2, b2 = weights
    phases = {}
    client = timed(phases, "keygen", lambda: P.Context(params))
    server = client.public()
    enc = timed(phases, "encrypt", lambda: P.encrypt(client, x, bound=input_bound))
    received, upload_bytes = timed(phases, "upload", lambda: round_trip(enc, server))
    start = time.perf_counter()
    h = timed(phases, "dense 784->hidden", lambda: P.matmul(received, w1, b1))
    h = timed(phases, "square", lambda: P.square(h))
    out = timed(phases, "dense hidden->10", lambda: P.matmul(h, w2, b2))
    forward = time.perf_counter() - start
    result, download_bytes = timed(phases, "download", lambda: round_trip(out, client))
    decrypted = timed(phases, "decrypt", lambda: P.decrypt(client, result))
    facts = {"phases_s": phases, "server_forward_s": forward,
             "input_ciphertexts": enc.ciphertext_count, "output_ciphertexts": out.ciphertext_count,
             "upload_bytes": upload_bytes, "download_bytes": download_bytes,
             "noise_budget_left_bits": result.noise_budget(client) if params.scheme == "bfv" else None,
             "levels_left": result.levels_left}
    return decrypted, facts


def bfv_problem(batch, hidden, rng):
    """Quantised inputs and integer weights: (x, weights)."""
    x = rng.integers(0, BFV_INPUT_MAX + 1, size=(batch, INPUTS))
    weights = (rng.integers(-7, 8, size=(INPUTS, hidden)), rng.integers(-50, 50, size=hidden),
               rng.integers(-7, 8, size=(hidden, OUTPUTS)), rng.integers(-50, 50, size=OUTPUTS))
    return x, weights


def ckks_problem(batch, hidden, rng):
    """Inputs in [0, 1) and Gaussian weights: (x, weights)."""
    x = rng.uniform(0, 1, size=(batch, INPUTS))
    weights = (rng.normal(0, 0.05, size=(INPUTS, hidden)), rng.normal(0, 0.1, size=hidden),
               rng.normal(0, 0.3, size=(hidden, OUTPUTS)), rng.normal(0, 0.1, size=OUTPUTS))
    return x, weights


def run_bfv(batch, hidden, rng):
    """The BFV acceptance run; ``passed`` means exact equality with numpy over the whole batch."""
    x, weights = bfv_problem(batch, hidden, rng)
    bounds = proven_bounds(BFV_INPUT_MAX, weights)
    max_value = max(bounds.values())
    w1, _, w2, _ = weights
    linear_bits = math.log2(max(np.abs(w1).sum(axis=0).max(), np.abs(w2).sum(axis=0).max()))
    selection = {}
    params = timed(selection, "select_parameters", lambda: P.select_parameters(
        "bfv", depth=1, max_value=max_value, linear_bits=linear_bits, batch_size=batch))
    decrypted, facts = encrypted_run(params, x, BFV_INPUT_MAX, weights)
    facts["phases_s"] = {**selection, **facts["phases_s"]}
    expected = network(x.astype(object), weights)
    exact = bool(np.array_equal(decrypted.astype(object), expected))
    mismatches = int(np.sum(decrypted.astype(object) != expected))
    largest = int(np.max(np.abs(expected)))
    return {"scheme": "bfv", "batch": batch, "hidden": hidden, "parameters": repr(params),
            "poly_modulus_degree": params.poly_modulus_degree, "plain_moduli": list(params.plain_moduli),
            "proven_bounds": bounds, "max_value": max_value, "linear_bits": linear_bits,
            "largest_output": largest, "exact": exact, "mismatches": mismatches, "passed": exact,
            **facts, "peak_memory_mb": peak_memory_mb()}


def run_ckks(batch, hidden, rng):
    """The CKKS acceptance run; ``passed`` means max abs error <= 2^-precision_bits."""
    x, weights = ckks_problem(batch, hidden, rng)
    bounds = proven_bounds(1.0, weights)
    integer_bits = math.ceil(math.log2(max(bounds.values()))) + 1
    selection = {}
    params = timed(selection, "select_parameters", lambda: P.select_parameters(
        "ckks", depth=CKKS_DEPTH, precision_bits=CKKS_PRECISION_BITS, integer_bits=integer_bits,
        batch_size=batch))
    decrypted, facts = encrypted_run(params, x, 1.0, weights)
    facts["phases_s"] = {**selection, **facts["phases_s"]}
    expected = network(x, weights)
    error = np.abs(decrypted - expected)
    tolerance = 2.0 ** -CKKS_PRECISION_BITS
    max_error = float(error.max())
    return {"scheme": "ckks", "batch": batch, "hidden": hidden, "parameters": repr(params),
            "poly_modulus_degree": params.poly_modulus_degree, "proven_bounds": bounds,
            "integer_bits": integer_bits, "precision_bits": CKKS_PRECISION_BITS,
            "max_abs_error": max_error, "mean_abs_error": float(error.mean()),
            "max_abs_output": float(np.abs(expected).max()),
            "relative_error": max_error / float(np.abs(expected).max()),
            "argmax_agreement": float(np.mean(decrypted.argmax(axis=1) == expected.argmax(axis=1))),
            "tolerance": tolerance, "passed": max_error <= tolerance,
            **facts, "peak_memory_mb": peak_memory_mb()}


def check_summary(run):
    """One short cell saying what was checked and how it came out."""
    if run["scheme"] == "bfv":
        return f"exact: {run['exact']} ({run['mismatches']} mismatches)"
    return (f"max abs err {run['max_abs_error']:.2e} (tol {run['tolerance']:.1e}), "
            f"rel {run['relative_error']:.1e}, argmax {100 * run['argmax_agreement']:.2f}%")


def to_markdown(runs, facts):
    """A phase-timing table with the checks, then the parameters of each run."""
    rows = [{"scheme": r["scheme"], "n": r["poly_modulus_degree"], "batch": r["batch"],
             "hidden": r["hidden"], **r["phases_s"], "forward": r["server_forward_s"],
             "per_sample_ms": 1000 * r["server_forward_s"] / r["batch"], "check": check_summary(r),
             "peak_mb": r["peak_memory_mb"]} for r in runs]
    columns = ([("scheme", "scheme"), ("n", "n"), ("batch", "batch"), ("hidden", "hidden")]
               + [(phase, f"{phase} (s)") for phase in PHASES]
               + [("forward", "server forward (s)"), ("per_sample_ms", "server ms/sample"),
                  ("check", "check"), ("peak_mb", "peak MiB (process)")])
    notes = [f"- {r['scheme']}: `{r['parameters']}`; proven bounds {r['proven_bounds']}; "
             f"{r['input_ciphertexts']} input ciphertexts ({r['upload_bytes'] / 2**20:.1f} MiB up, "
             f"{r['download_bytes'] / 2**20:.2f} MiB down); "
             + (f"noise budget left {r['noise_budget_left_bits']} bits" if r["scheme"] == "bfv"
                else f"levels left {r['levels_left']}")
             for r in runs]
    return "\n".join(["784 -> hidden -> square -> 10 with primitives ops (wall seconds per phase; "
                      "upload/download = serialise + deserialise).", "", markdown_table(rows, columns),
                      "", *notes, "", machine_line(facts)])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096, help="samples (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=30, help="hidden units (default: %(default)s)")
    parser.add_argument("--scheme", choices=["bfv", "ckks", "both"], default="both")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="folder for the JSON and markdown")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 64, hidden layer of 5")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.hidden = 64, 5
    for name in ("batch", "hidden"):
        if getattr(args, name) < 1:
            parser.error(f"Expected --{name} to be a positive integer. Received: {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    runners = {"bfv": [run_bfv], "ckks": [run_ckks], "both": [run_bfv, run_ckks]}[args.scheme]
    runs = []
    for runner in runners:
        runs.append(runner(args.batch, args.hidden, rng))
        print(f"{runs[-1]['scheme']}: {check_summary(runs[-1])}", flush=True)
    facts = machine()
    markdown = to_markdown(runs, facts)
    data = {"machine": facts, "batch": args.batch, "hidden": args.hidden, "seed": args.seed, "runs": runs}
    paths = write_results(args.output, "dnn_primitives", data, markdown)
    print(markdown)
    print("wrote", *paths)
    if not all(r["passed"] for r in runs):
        sys.exit("FAILED: an encrypted result disagreed with numpy (see the check column)")


if __name__ == "__main__":
    main()
