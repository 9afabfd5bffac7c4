"""Benchmark encrypted training: our slot-packed SGD against straightforward TenSEAL, same run.

Ours (``heras`` ``model.fit(enc_x, enc_y, ...)``): batch x hidden units packed in the slots,
one ciphertext per input feature / weight row, rotations only for the sums a gradient needs.
The TenSEAL reference is what a ``CKKSVector`` user writes: one vector per input feature
holding the minibatch, one size-1 (replicated) vector per weight, ``(x_i * d1_j).sum()`` for
each weight gradient (TenSEAL's sum rotates over all slots), refreshed by decrypting and
re-encrypting in-process after every step. Both run the same SGD (same initial weights,
minibatches, rate) on the same CKKS parameters; both are checked against the float64 oracle.

Reports per SGD step (median), per epoch, refreshes, bytes exchanged, operation counts and the
ratio TenSEAL / ours. Timings on a shared machine are contended: read the ratio.

    python benchmarks/encrypted_training.py            # Iris 4-8-3, 2 epochs of 64+56 samples
    python benchmarks/encrypted_training.py --quick    # tiny 3-4-2 network, 2 steps
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tenseal as ts  # noqa: E402

import primitives as P  # noqa: E402
from benchmarks._common import DEFAULT_OUTPUT, machine, machine_line, markdown_table, write_results  # noqa: E402
from heras.layers import Dense, Input, Square  # noqa: E402
from heras.models import Sequential  # noqa: E402
from heras.models import encrypted_training as ET  # noqa: E402
from primitives.training.layout import minibatches  # noqa: E402


def tenseal_sgd(params, weights, x, onehot, epochs, batch_size, learning_rate):
    """Straightforward CKKSVector SGD; returns (weights, step times, refresh times, counts)."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
    context.global_scale = 2.0 ** params.scale_bits
    context.generate_galois_keys()
    enc = lambda v: ts.ckks_vector(context, list(np.atleast_1d(v).astype(float)))  # noqa: E731
    W1 = [[enc(w) for w in row] for row in weights.W1]
    b1 = [enc(b) for b in weights.b1]
    W2 = [[enc(w) for w in row] for row in weights.W2]
    b2 = [enc(b) for b in weights.b2]
    d, H, K = len(W1), len(b1), len(b2)
    data = [([enc(x[s:e, i]) for i in range(d)], [enc(onehot[s:e, k]) for k in range(K)], e - s)
            for s, e in minibatches(len(x), batch_size)]
    slots = params.poly_modulus_degree // 2
    # rotations: TenSEAL's sum() rotates over all slots (log2 of them) once per gradient (counted, not traced)
    counts = {"ct_ct": (2 * d * H + 2 * H + 3 * H * K), "rotations": (d * H + H + H * K + K) * int(np.log2(slots))}
    step_times, refresh_times = [], []
    for _ in range(epochs):
        for xs, ys, n in data:
            tick = time.perf_counter()
            c = learning_rate * 2.0 / (n * K)
            z = [sum((xs[i] * W1[i][j] for i in range(1, d)), xs[0] * W1[0][j]) + b1[j] for j in range(H)]
            a = [zj.square() for zj in z]
            d2 = [sum((a[j] * W2[j][k] for j in range(1, H)), a[0] * W2[0][k]) + b2[k] - ys[k] for k in range(K)]
            back = [sum((d2[k] * W2[j][k] for k in range(1, K)), d2[0] * W2[j][0]) for j in range(H)]
            d1 = [back[j] * z[j] for j in range(H)]
            a_c, x_c = [aj * c for aj in a], [xi * (2 * c) for xi in xs]  # rates first: one level less
            W2 = [[W2[j][k] - (a_c[j] * d2[k]).sum() for k in range(K)] for j in range(H)]
            b2 = [b2[k] - (d2[k] * c).sum() for k in range(K)]
            W1 = [[W1[i][j] - (x_c[i] * d1[j]).sum() for j in range(H)] for i in range(d)]
            b1 = [b1[j] - (d1[j] * (2 * c)).sum() for j in range(H)]
            step_times.append(time.perf_counter() - tick)
            if len(step_times) == epochs * len(data):
                break  # the last step needs no refresh
            tick = time.perf_counter()  # refresh: decrypt and re-encrypt (the key is in this process)
            W1 = [[enc(w.decrypt()[0]) for w in row] for row in W1]
            W2 = [[enc(w.decrypt()[0]) for w in row] for row in W2]
            b1, b2 = [enc(b.decrypt()[0]) for b in b1], [enc(b.decrypt()[0]) for b in b2]
            refresh_times.append(time.perf_counter() - tick)
    flat = lambda m: np.array([[w.decrypt()[0] for w in row] for row in m])  # noqa: E731
    trained = type(weights)(flat(W1), np.array([b.decrypt()[0] for b in b1]), flat(W2),
                            np.array([b.decrypt()[0] for b in b2]))
    return trained, step_times, refresh_times, counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny 3-4-2 network, 2 steps")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    if args.quick:
        rng = np.random.default_rng(0)
        x, y, widths, batch, epochs, rate = rng.normal(size=(16, 3)), rng.integers(0, 2, 16), (3, 4, 2), 8, 1, 0.3
        name = "tiny 3-4-2"
    else:
        from heras.datasets import iris
        (x, y), _ = iris.load_data()
        widths, batch, epochs, rate, name = (4, 8, 3), 64, args.epochs, 0.5, "Iris 4-8-3"
    model = Sequential([Input((widths[0],)), Dense(widths[1]), Square(), Dense(widths[2])])
    initial = ET.initial_weights(model)
    onehot = np.eye(widths[2])[y]
    plan = ET.training_plan(model, batch, samples=len(x), epochs=epochs)
    owner = P.Context(plan.parameters)
    enc_x, enc_y = ET.encrypt_training_data(model, owner, x, y, batch)
    reference, _ = ET.plaintext_fit(model, x, y, epochs=epochs, batch_size=batch, learning_rate=rate)
    history = model.fit(enc_x, enc_y, epochs=epochs, learning_rate=rate, key_holder=owner, verbose=0, seed=0)
    ours = model.decrypt_weights(owner).decrypted_weights
    steps_per_epoch = len(minibatches(len(x), batch))
    theirs, step_times, refresh_times, counts = tenseal_sgd(plan.parameters, initial, x, onehot, epochs, batch, rate)
    ours_refresh = (history["train_time_s"] - sum(history["step_times"])) / max(1, history["refreshes"])
    rows = [
        {"impl": "sealion (batch x units in slots)", "ct_ct": plan.ct_ct_multiplications, "rotations": plan.rotations,
         "step_s": history["seconds_per_step"], "epoch_s": history["train_time_s"] / epochs,
         "refresh_s": ours_refresh, "refreshes": history["refreshes"], "bytes": history["refresh_bytes"],
         "weight_error": ours.max_relative_error(reference)},
        {"impl": "TenSEAL CKKSVector (batch in slots, weight per vector)", "ct_ct": counts["ct_ct"],
         "rotations": counts["rotations"], "step_s": statistics.median(step_times),
         "epoch_s": (sum(step_times) + sum(refresh_times)) / epochs, "refresh_s": statistics.median(refresh_times),
         "refreshes": len(refresh_times), "bytes": None, "weight_error": theirs.max_relative_error(reference)},
    ]
    ratio = rows[1]["step_s"] / rows[0]["step_s"]
    data = {"network": name, "batch_size": batch, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "parameters": repr(plan.parameters), "coeff_mod_bit_sizes": list(plan.parameters.coeff_mod_bit_sizes),
            "rows": rows, "tenseal_over_ours_step": ratio, "machine": machine(), "plan": str(plan)}
    columns = [("impl", "Implementation"), ("ct_ct", "ct-ct mults / step"), ("rotations", "Rotations / step"),
               ("step_s", "s / step (median)"), ("epoch_s", "s / epoch"), ("refresh_s", "s / refresh"),
               ("refreshes", "Refreshes"), ("bytes", "Refresh bytes"), ("weight_error", "Max rel. weight error")]
    text = "\n".join([f"# Encrypted training: {name}, minibatches of {batch}, {epochs} epoch(s)", "",
                      markdown_table(rows, columns), "",
                      f"TenSEAL / sealion time per SGD step: {ratio:.2f}x (same run, same parameters: "
                      f"n={plan.parameters.poly_modulus_degree}, {plan.parameters.depth} levels).", "",
                      machine_line(data["machine"])])
    print(text)
    write_results(args.output, "encrypted_training_quick" if args.quick else "encrypted_training", data, text)
    return data


if __name__ == "__main__":
    main()
