"""Median per-op timings of sealion's encrypted primitives, BFV and CKKS, at several ring sizes.

Each op runs through the public API on tensors of one ciphertext (one feature, a full batch
of slots), so figures are per ciphertext, Python overhead included. Writes
``primitives.json`` and ``primitives.md`` into the output folder.

Usage: python benchmarks/primitives.py [--sizes 4096 8192 16384] [--repeats 5] [--quick]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402
from benchmarks._common import (DEFAULT_OUTPUT, machine, markdown_table, median_seconds,  # noqa: E402
                                write_results)
from primitives.selection import bfv_coeff_mod_bit_sizes  # noqa: E402

CKKS_CHAINS = {4096: ((40, 20, 40), 20), 8192: ((60, 40, 40, 60), 40),
               16384: ((60, 40, 40, 40, 40, 60), 40), 32768: ((60,) + (40,) * 10 + (60,), 40)}


def bfv_parameters(n):
    """BFV with the largest secure coefficient modulus and one 20-bit plaintext prime."""
    from tenseal import sealapi
    t = sealapi.PlainModulus.Batching(n, 20).value()
    return P.Parameters("bfv", n, bfv_coeff_mod_bit_sizes(n, 128), (t,), depth=1)


def ckks_parameters(n):
    bits, scale = CKKS_CHAINS[n]
    return P.Parameters("ckks", n, bits, scale_bits=scale, depth=len(bits) - 2)


def op_cases(context, rng):
    """(name, callable, ciphertexts produced) for one context."""
    slots = context.slot_count
    integer = context.scheme == "bfv"
    draw = (lambda shape: rng.integers(-100, 100, size=shape)) if integer else \
        (lambda shape: rng.uniform(-1, 1, size=shape))
    one, other = draw((slots, 1)), draw((slots, 1))
    x, y = P.encrypt(context, one, bound=128 if integer else None), P.encrypt(context, other, bound=128 if integer else None)
    wide = P.encrypt(context, draw((slots, 16)), bound=128 if integer else None)
    kernel = draw((16, 4)) if not integer else rng.integers(-7, 8, size=(16, 4))
    scalar = 3 if integer else 0.75
    blob = x.serialize()
    return [
        ("encrypt", lambda: P.encrypt(context, one, bound=128 if integer else None), 1),
        ("decrypt", lambda: P.decrypt(context, x), 1),
        ("add ct+ct", lambda: P.add(x, y), 1),
        ("add ct+plain", lambda: P.add(x, scalar), 1),
        ("multiply ct*scalar", lambda: P.multiply(x, scalar), 1),
        ("multiply ct*ct (+relin)", lambda: P.multiply(x, y), 1),
        ("square", lambda: P.square(x), 1),
        ("matmul 16->4 (per output)", lambda: P.matmul(wide, kernel), 4),
        ("serialise", lambda: x.serialize(), 1),
        ("deserialise", lambda: P.EncryptedTensor.from_bytes(blob, context), 1),
    ]


def run(sizes, repeats):
    rng = np.random.default_rng(0)
    rows = []
    for scheme, make in (("bfv", bfv_parameters), ("ckks", ckks_parameters)):
        for n in sizes:
            context = P.Context(make(n))
            for name, function, outputs in op_cases(context, rng):
                seconds, _ = median_seconds(function, repeats)
                rows.append({"scheme": scheme, "n": n, "op": name, "median_ms": 1000 * seconds / outputs,
                             "repeats": repeats})
            print(f"{scheme} n={n} done", flush=True)
    return rows


def to_markdown(rows, sizes):
    """One row per (scheme, op), one column per ring size."""
    table = {}
    for row in rows:
        table.setdefault((row["scheme"], row["op"]), {})[row["n"]] = row["median_ms"]
    columns = [("scheme", "scheme"), ("op", "op")] + [(str(n), f"n={n} (ms)") for n in sizes]
    merged = [{"scheme": scheme, "op": op, **{str(n): times.get(n) for n in sizes}}
              for (scheme, op), times in table.items()]
    return "Median milliseconds per ciphertext.\n\n" + markdown_table(merged, columns)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true", help="n=4096 only, 3 repeats")
    args = parser.parse_args(argv)
    sizes, repeats = ([4096], 3) if args.quick else (args.sizes, args.repeats)
    rows = run(sizes, repeats)
    markdown = to_markdown(rows, sizes)
    paths = write_results(args.output, "primitives", {"machine": machine(), "rows": rows}, markdown)
    print(markdown)
    print("wrote", *paths)


if __name__ == "__main__":
    main()
