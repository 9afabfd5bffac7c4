"""Training recipes across seeds: does every SEALion config reach the paper's accuracy on seeds 0-2?

For each config in ``configs/`` and each seed, the config runs exactly as ``sealion run`` would
prepare it, with only ``training.seed`` changed: train with the config's recipe, then prepare
for encryption (fine-tuning too, when the config asks for it). The row gives the float model's
accuracy and the accuracy of what the server would compute, on the whole test set:

- BFV: the discretised integer model, which the encrypted forward pass reproduces bit for bit
  (every ``sealion run`` and ``benchmarks/sealion_table.py`` row re-checks that on its batches);
- CKKS: the float64 evaluation of the prepared layers that the proven error bound is relative to.

No encryption runs here, so a seed costs one training. Encrypted figures for seed 0 come from
``benchmarks/sealion_table.py``. MNIST rows are compared with SEALion's figure for the model
(``benchmarks/sealion_table.PAPER``); the paper reports no Fashion-MNIST figures.

    SEALION_DATA=../shared/data python benchmarks/seeds.py
    python benchmarks/seeds.py --configs mnist_cnn16 --seeds 1 2
    python benchmarks/seeds.py --quick      # bundled digits, 2 seeds, seconds (the test runs it)

Writes benchmarks/results/seeds.json and seeds.md after every row: a long run keeps what it
measured. Exits 1 if a row with a paper figure falls below it.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import DEFAULT_OUTPUT, machine, machine_line, markdown_table, write_results  # noqa: E402

DEFAULT_CONFIGS = ("mnist_dnn30", "mnist_dnn100", "mnist_cnn16", "mnist_cnn16_fast", "mnist_cnn16_2primes",
                   "mnist_cnn16_l0", "mnist_dnn30_ckks", "fashion_dnn30", "fashion_dnn100", "fashion_cnn16")
COLUMNS = [("config", "config"), ("model", "model"), ("scheme", "scheme"), ("seed", "seed"),
           ("primes", "CRT primes"), ("plaintext", "plain %"), ("served", "discretised / oracle %"),
           ("paper", "paper %"), ("meets", "at least the paper"), ("train_s", "train + prepare s")]


def paper_accuracy(config):
    """SEALion's MNIST accuracy for this config's model, or None (Fashion-MNIST, other models).

    A model named with a qualifier, e.g. ``CNN-16 (4-bit inputs, 5-bit weights)``, is held to
    its base model's figure (``CNN-16``).
    """
    if config.dataset.name != "mnist":
        return None
    from benchmarks.sealion_table import PAPER
    figures = {row["model"]: row["accuracy"] for row in PAPER}
    name = config.model.name
    return figures.get(name, figures.get(name.split(" (")[0]))


def measure(config, log):
    """One row: train and prepare ``config`` as ``sealion run`` would; accuracies on the test set."""
    import keras
    import numpy as np

    from experiments.runner import prepare
    keras.backend.clear_session()
    start = time.perf_counter()
    model, plan, ((_, _), (x_test, y_test)) = prepare(config, log=log, verbose=0)
    elapsed = time.perf_counter() - start
    labels = np.asarray(y_test).reshape(-1)
    plain = np.asarray(model.predict(x_test, batch_size=1024, verbose=0)).argmax(-1)
    served = np.asarray(model.predict_discretized(x_test)).astype(np.float64).argmax(-1)
    moduli = plan.parameters.plain_moduli if plan.scheme == "bfv" else None
    paper = paper_accuracy(config)
    row = {"config": config.name, "model": config.model.name, "dataset": config.dataset.name,
           "scheme": plan.scheme, "seed": config.training.seed, "primes": len(moduli) if moduli else None,
           "plaintext": round(100 * float(np.mean(plain == labels)), 2),
           "served": round(100 * float(np.mean(served == labels)), 2), "paper": paper,
           "train_s": round(elapsed, 1)}
    row["meets"] = None if paper is None else row["served"] >= paper
    return row


def summary_lines(rows):
    """Per config: min / mean / max over seeds of the served accuracy, against the paper."""
    lines = ["| config | seeds | served % min / mean / max | paper % | every seed at least the paper |",
             "|---|---|---|---|---|"]
    for name in dict.fromkeys(row["config"] for row in rows):
        mine = [row for row in rows if row["config"] == name]
        values = [row["served"] for row in mine]
        paper = mine[0]["paper"]
        verdict = "-" if paper is None else ("yes" if all(row["meets"] for row in mine) else "NO")
        lines.append(f"| {name} | {', '.join(str(row['seed']) for row in mine)} | {min(values):.2f} / "
                     f"{statistics.mean(values):.2f} / {max(values):.2f} | {'-' if paper is None else paper} | "
                     f"{verdict} |")
    return lines


def write(output, rows, overrides, facts):
    """Write seeds.json and seeds.md (called after every row)."""
    markdown = "\n\n".join([
        "# Training recipes across seeds (whole test set)",
        "\n".join(summary_lines(rows)),
        markdown_table(rows, COLUMNS),
        "Served: the accuracy of what the encrypted forward pass returns (BFV: the discretised model, "
        "bit for bit; CKKS: the float64 evaluation its error bound is proven against). "
        f"Overrides: {overrides or 'none'}.",
        machine_line(facts)])
    write_results(output, "seeds", {"machine": facts, "overrides": overrides, "rows": rows}, markdown)
    return markdown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="config names in configs/ (default: %(default)s)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every run, e.g. training.epochs=2")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true", help="the bundled digits (quickstart config), seeds 0 and 1")
    args = parser.parse_args(argv)
    from experiments import load_config
    if args.quick:
        args.configs, args.seeds = ["quickstart"], [0, 1]
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    rows, facts = [], machine()
    for name in args.configs:
        for seed in args.seeds:
            config = load_config(ROOT / "configs" / f"{name}.yaml", [*args.set, f"training.seed={seed}"])
            log(f"== {name}, seed {seed}")
            rows.append(measure(config, log))
            log(f"   plain {rows[-1]['plaintext']}%, served {rows[-1]['served']}% (paper {rows[-1]['paper']})")
            markdown = write(args.output, rows, args.set, facts)
    print(markdown)
    return 1 if any(row["meets"] is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
