"""BFV quantisation trade-off: bits vs CRT primes vs accuracy vs encrypted latency, post-training
rounding beside quantisation-aware fine-tuning (heras.models.fine_tuning).

Each model is a config in ``configs/`` trained once with its defaults (recipe, seed); then for
every (input bits, weight bits) pair the trained weights are (a) rounded as they are
(post-training rounding) and (b) fine-tuned with the rounding in the loop, then rounded. Each
row gives the proven bound, the CRT primes it takes at the selected n, the discretised
accuracy on the whole test set (equal to the encrypted accuracy: BFV decrypts to the
discretised integers bit for bit, which every encrypted row re-checks on its batch) and the
median server forward time of one encrypted batch. A batch costs the same however many of
its n slots hold samples (one ciphertext per feature and prime), so ``--encrypted-samples``
only sets how many samples the exactness check covers.

    SEALION_DATA=../shared/data python benchmarks/quantisation.py
    python benchmarks/quantisation.py --configs mnist_dnn100 --bits 8/8 4/5 --repeats 1
    python benchmarks/quantisation.py --quick      # digits, seconds (the test runs it)

Writes benchmarks/results/quantisation.json and .md. Timings on a shared machine are
contended: compare rows of one run (the ratio column), not runs.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import DEFAULT_OUTPUT, machine, machine_line, markdown_table, write_results  # noqa: E402

DEFAULT_CONFIGS = ("mnist_cnn16", "mnist_dnn100")
DEFAULT_BITS = ("8/8", "5/6", "4/5", "3/4")
COLUMNS = [("model", "model"), ("bits", "input/weight bits"), ("method", "method"),
           ("proven_bits", "proven max |value| (bits)"), ("primes", "CRT primes"), ("n", "n"),
           ("accuracy", "accuracy % (whole test set)"), ("latency_s", "latency s (median)"),
           ("latency_ratio", "latency vs first row"), ("exact", "exact")]


def parse_bits(text):
    """"4/5" -> (4, 5)."""
    try:
        input_bits, weight_bits = (int(part) for part in text.split("/"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"Expected bits as INPUT/WEIGHT, e.g. 4/5. Received: {text!r}") from err
    return input_bits, weight_bits


def encrypted_latency(model, plan, x, repeats):
    """Median forward time of one encrypted batch of ``x``, and whether decryption matched the
    discretised model bit for bit."""
    import numpy as np

    import primitives as P
    client = P.Context(plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    times, answer = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        answer = model.encrypted_forward(query)
        times.append(time.perf_counter() - start)
    exact = bool(np.array_equal(np.asarray(P.decrypt(client, answer)).astype(object),
                                np.asarray(model.predict_discretized(x)).astype(object)))
    return statistics.median(times), exact


def measure_config(config, bits_list, fine_tune, samples, repeats, log, weights=None, on_row=None):
    """Rows of the table for one config (see the module docstring); ``weights``: a Keras weights
    file of the config's model to start from instead of training; ``on_row(rows)`` after each row."""
    import math

    import keras
    import numpy as np

    from experiments.building import build_model, train
    from experiments.data import load_dataset
    keras.utils.set_random_seed(config.training.seed)
    (x_train, y_train), (x_test, y_test) = load_dataset(config)
    model = build_model(config, x_train.shape[1:])
    if weights:
        log(f"{config.model.name}: weights from {weights}")
        model.load_weights(weights)
    else:
        log(f"{config.model.name}: training {config.training.epochs} epochs")
        train(model, config, x_train, y_train, verbose=0)
    trained = model.get_weights()
    rows, latency_by_parameters = [], {}
    for input_bits, weight_bits in bits_list:
        for method in ("rounded", "fine-tuned"):
            model.set_weights(trained)
            options = None
            if method == "fine-tuned":
                options = {"x": x_train, "y": y_train, "augmentation": config.training.augmentation,
                           "seed": config.training.seed, "batch_size": config.training.batch_size, **fine_tune}
            start = time.perf_counter()
            plan = model.prepare_encryption("bfv", security=config.encryption.security, calibration=x_train,
                                            input_bits=input_bits, weight_bits=weight_bits, fine_tune=options)
            prepare_s = time.perf_counter() - start
            outputs = np.asarray(model.predict_discretized(x_test)).astype(np.float64)
            accuracy = float(np.mean(outputs.argmax(-1) == y_test))
            params = plan.parameters
            row = {"model": config.model.name, "bits": f"{input_bits}/{weight_bits}", "method": method,
                   "proven_bits": round(math.log2(max(plan.max_value, 1)), 1), "primes": len(params.plain_moduli),
                   "n": params.poly_modulus_degree, "accuracy": round(100 * accuracy, 2),
                   "plain_moduli": list(params.plain_moduli), "prepare_s": prepare_s}
            log(f"  {row['bits']} {method}: {row['accuracy']}%, {row['primes']} primes (n = {row['n']})")
            if samples:
                key = (params.poly_modulus_degree, tuple(params.plain_moduli))
                row["latency_s"], row["exact"] = encrypted_latency(model, plan, x_test[:samples], repeats)
                latency_by_parameters.setdefault(key, row["latency_s"])
                log(f"    encrypted: {row['latency_s']:.2f} s per batch, exact {row['exact']}")
            rows.append(row)
            if on_row is not None:
                on_row(rows)
    first = next((row["latency_s"] for row in rows if row.get("latency_s")), None)
    for row in rows:
        if first and row.get("latency_s"):
            row["latency_ratio"] = round(row["latency_s"] / first, 3)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="config names in configs/ (default: %(default)s)")
    parser.add_argument("--bits", nargs="+", type=parse_bits, default=[parse_bits(b) for b in DEFAULT_BITS],
                        help="INPUT/WEIGHT bit pairs (default: %(default)s)")
    parser.add_argument("--fine-tune-epochs", type=int, default=2)
    parser.add_argument("--fine-tune-rate", type=float, default=3e-4)
    parser.add_argument("--encrypted-samples", type=int, default=256,
                        help="samples in the encrypted batch (0: no encrypted runs)")
    parser.add_argument("--repeats", type=int, default=1, help="forward passes per encrypted batch")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every model, e.g. training.epochs=2")
    parser.add_argument("--weights", action="append", default=[], metavar="CONFIG=PATH",
                        help="start CONFIG from these trained weights (model.save_weights) instead of training")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true",
                        help="digits (quickstart config), 3/3 bits, 5 fine-tuning epochs, one encrypted batch of 64")
    args = parser.parse_args(argv)
    from experiments import load_config
    configs, bits = args.configs, args.bits
    if args.quick:
        configs, bits, args.encrypted_samples = ["quickstart"], [(3, 3)], 64
        args.fine_tune_epochs, args.fine_tune_rate = 5, 1e-3
        args.set = ["training.epochs=20", *args.set]
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    fine_tune = {"epochs": args.fine_tune_epochs, "learning_rate": args.fine_tune_rate}
    weights = dict(item.split("=", 1) for item in args.weights)
    rows, facts = [], machine()
    for name in configs:
        config = load_config(ROOT / "configs" / f"{name}.yaml", args.set)
        done = list(rows)
        rows = done + measure_config(config, bits, fine_tune, args.encrypted_samples, args.repeats, log,
                                     weights.get(name), lambda new: write(args, done + new, fine_tune, facts))
    markdown = write(args, rows, fine_tune, facts)
    print(markdown)
    return rows


def write(args, rows, fine_tune, facts):
    """Write the JSON and markdown (after every row: a long run keeps what it measured)."""
    markdown = "\n\n".join([
        "# BFV quantisation: post-training rounding vs quantisation-aware fine-tuning",
        markdown_table(rows, COLUMNS),
        f"Fine-tuning: {args.fine_tune_epochs} epochs, Adam {args.fine_tune_rate:g} with cosine decay, "
        f"inputs and kernels rounded (straight-through). Accuracy: discretised model on the whole test set "
        f"(= encrypted, bit for bit: `exact`). Latency: server forward of one encrypted batch (any number of "
        f"samples up to n), median of {args.repeats}. Overrides: {args.set or 'none'}.",
        machine_line(facts)])
    paths = write_results(args.output, "quantisation", {"machine": facts, "fine_tune": fine_tune,
                                                        "overrides": args.set, "weights": args.weights,
                                                        "rows": rows}, markdown)
    print(f"Wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return markdown


if __name__ == "__main__":
    main()
