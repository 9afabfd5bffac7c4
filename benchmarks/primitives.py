"""Median per-op timings of sealion's encrypted primitives, BFV and CKKS, at several ring sizes.

Every op runs through the public ``primitives`` API on a tensor of one feature filling every
slot, i.e. one ciphertext, so each figure is per ciphertext with Python overhead included
(matmul is divided by its output count). Each ring uses the largest coefficient modulus its
128-bit security allows (BFV: SEAL's BFVDefault split and one 20-bit batching prime; CKKS: a
60-bit first and special prime around as many 40-bit primes as fit, scale 2^40; n=4096 only
fits 24-bit primes). Writes ``primitives.json`` and ``primitives.md`` into the output folder.

Usage:
    python benchmarks/primitives.py [--sizes 4096 8192 16384] [--repeats 7] [--output DIR] [--quick]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402
from benchmarks._common import (DEFAULT_OUTPUT, machine, machine_line, markdown_table,  # noqa: E402
                                time_repeats, write_results)
from primitives.selection import bfv_coeff_mod_bit_sizes  # noqa: E402

SIZES = (4096, 8192, 16384)
SECURITY = 128
BFV_PLAIN_BITS = 20
BFV_BOUND = 128          # inputs are drawn from [-100, 100)
MATMUL_SHAPE = (16, 4)   # features -> units of the small dense layer
CKKS_CHAINS = {          # n -> (coeff_mod_bit_sizes, scale_bits): the largest chain that fits
    4096: ((30, 24, 24, 30), 24),
    8192: ((60, 40, 40, 60), 40),
    16384: ((60,) + (40,) * 7 + (60,), 40),
    32768: ((60,) + (40,) * 18 + (60,), 40),
}
OPS = ("encrypt", "encrypt (public key)", "decrypt", "add ct+ct", "add ct+plain scalar",
       "add ct+plain vector", "multiply ct*plain scalar", "multiply ct*ct", "square",
       f"matmul {MATMUL_SHAPE[0]}->{MATMUL_SHAPE[1]} (per output)", "serialise", "deserialise",
       "serialise round trip")


def bfv_parameters(n):
    """BFV at ring ``n``: the largest secure coefficient modulus, one batching plaintext prime."""
    from tenseal import sealapi
    t = sealapi.PlainModulus.Batching(n, BFV_PLAIN_BITS).value()
    return P.Parameters("bfv", n, bfv_coeff_mod_bit_sizes(n, SECURITY), (t,), security=SECURITY, depth=1)


def ckks_parameters(n):
    """CKKS at ring ``n`` with the chain of :data:`CKKS_CHAINS`."""
    if n not in CKKS_CHAINS:
        raise ValueError(f"Expected a ring size in {sorted(CKKS_CHAINS)}. Received: n={n}")
    bits, scale = CKKS_CHAINS[n]
    return P.Parameters("ckks", n, bits, scale_bits=scale, security=SECURITY, depth=len(bits) - 2)


def draw_values(scheme, rng, shape):
    """Random inputs: integers in [-100, 100) for BFV, reals in [-1, 1) for CKKS."""
    if scheme == "bfv":
        return rng.integers(-100, 100, size=shape)
    return rng.uniform(-1, 1, size=shape)


def op_cases(context, rng):
    """Return (op name, callable, output ciphertexts) for every op of :data:`OPS` under ``context``."""
    scheme, slots = context.scheme, context.slot_count
    bound = BFV_BOUND if scheme == "bfv" else None
    server = context.public()
    one, other = draw_values(scheme, rng, (slots, 1)), draw_values(scheme, rng, (slots, 1))
    x, y = P.encrypt(context, one, bound=bound), P.encrypt(context, other, bound=bound)
    wide = P.encrypt(context, draw_values(scheme, rng, (slots, MATMUL_SHAPE[0])), bound=bound)
    kernel = (rng.integers(-7, 8, size=MATMUL_SHAPE) if scheme == "bfv"
              else rng.uniform(-1, 1, size=MATMUL_SHAPE))
    scalar = 3 if scheme == "bfv" else 0.75
    blob = x.serialize()
    cases = [
        lambda: P.encrypt(context, one, bound=bound),
        lambda: P.encrypt(server, one, bound=bound),
        lambda: P.decrypt(context, x),
        lambda: P.add(x, y),
        lambda: P.add(x, scalar),
        lambda: P.add(x, other),
        lambda: P.multiply(x, scalar),
        lambda: P.multiply(x, y),
        lambda: P.square(x),
        lambda: P.matmul(wide, kernel),
        lambda: x.serialize(),
        lambda: P.EncryptedTensor.from_bytes(blob, server),
        lambda: P.EncryptedTensor.from_bytes(x.serialize(), server),
    ]
    outputs = [MATMUL_SHAPE[1] if name.startswith("matmul") else 1 for name in OPS]
    return list(zip(OPS, cases, outputs)), len(blob)


def bench_ring(scheme, n, repeats, rng):
    """Time every op at one (scheme, n); return (rows, facts about the parameters)."""
    params = bfv_parameters(n) if scheme == "bfv" else ckks_parameters(n)
    context = P.Context(params)
    cases, ciphertext_bytes = op_cases(context, rng)
    rows = []
    for name, function, outputs in cases:
        stats = time_repeats(function, repeats)
        rows.append({"scheme": scheme, "n": n, "op": name, "outputs": outputs,
                     "median_ms": 1000 * stats["median_s"] / outputs,
                     "min_ms": 1000 * stats["min_s"] / outputs,
                     "max_ms": 1000 * stats["max_s"] / outputs, "repeats": stats["repeats"]})
    facts = {"scheme": scheme, "n": n, "parameters": repr(params), "slots": params.slot_count,
             "coeff_modulus_bits": params.coeff_modulus_bits, "ciphertext_bytes": ciphertext_bytes}
    return rows, facts


def run(sizes, repeats, seed=0):
    """Benchmark both schemes at every ring size; return (rows, parameter facts)."""
    rng = np.random.default_rng(seed)
    rows, rings = [], []
    for scheme in ("bfv", "ckks"):
        for n in sizes:
            ring_rows, facts = bench_ring(scheme, n, repeats, rng)
            rows += ring_rows
            rings.append(facts)
            print(f"{scheme} n={n}: {len(ring_rows)} ops timed", flush=True)
    return rows, rings


def to_markdown(rows, rings, sizes, repeats, facts):
    """One table row per (scheme, op), one column per ring size, then the parameters used."""
    table = {}
    for row in rows:
        table.setdefault((row["scheme"], row["op"]), {})[row["n"]] = row["median_ms"]
    columns = [("scheme", "scheme"), ("op", "op")] + [(str(n), f"n={n} (ms)") for n in sizes]
    merged = [{"scheme": scheme, "op": op, **{str(n): times.get(n) for n in sizes}}
              for (scheme, op), times in table.items()]
    params = [f"- {r['scheme']} n={r['n']}: log q = {r['coeff_modulus_bits']} bits, {r['slots']} slots, "
              f"{r['ciphertext_bytes']:,} bytes per serialised ciphertext; `{r['parameters']}`"
              for r in rings]
    return "\n".join([
        f"Median milliseconds per ciphertext over {repeats} repeats (after one warm-up call). "
        "Multiply ct*ct includes relinearisation (CKKS: and rescaling); CKKS plain multiplies "
        "rescale too.", "", markdown_table(merged, columns), "", "Parameters:", *params, "",
        machine_line(facts)])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                        help="ring degrees n to benchmark (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per op (default: %(default)s)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="folder for the JSON and markdown")
    parser.add_argument("--quick", action="store_true", help="smoke run: n=4096 only, 3 repeats")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"Expected --repeats to be a positive integer. Received: {args.repeats}")
    bad = [n for n in args.sizes if n not in CKKS_CHAINS]
    if bad:
        parser.error(f"Expected --sizes from {sorted(CKKS_CHAINS)}. Received: {bad}")
    if args.quick:
        args.sizes, args.repeats = [4096], 3
    return args


def main(argv=None):
    args = parse_args(argv)
    rows, rings = run(args.sizes, args.repeats)
    facts = machine()
    markdown = to_markdown(rows, rings, args.sizes, args.repeats, facts)
    data = {"machine": facts, "repeats": args.repeats, "sizes": args.sizes, "parameters": rings,
            "rows": rows}
    paths = write_results(args.output, "primitives", data, markdown)
    print(markdown)
    print("wrote", *paths)


if __name__ == "__main__":
    main()
