"""SEALion's results table, reproduced: the paper's figures beside ours, measured in one run.

Each model is a config in ``configs/`` run end to end (train, discretise, select parameters,
encrypt a full batch, forward on the server, decrypt) in its own process, so its peak memory is
its own. Dense models are also run with the straightforward TenSEAL implementation
(``benchmarks/tenseal_reference.py``) on the same integer weights, parameters and batch
(coefficient modulus: the same bits in SEAL's default primes, see that module); the ratio
compares server forward times on that batch.

    SEALION_DATA=../shared/data python benchmarks/sealion_table.py
    python benchmarks/sealion_table.py --configs mnist_dnn30 --set training.epochs=2   # smoke run

Every forward pass is repeated (``--set evaluation.repeats=N``, default 3 here) and the
median reported, ours and TenSEAL's alike.

Writes benchmarks/results/sealion_table.json and .md, and sealion_table.png: throughput and
accuracy per model, ours beside the paper's.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import DEFAULT_OUTPUT, machine, machine_line, write_results  # noqa: E402

PAPER = [  # SEALion (van Elsloo, Patrini, Ivey-Law, 2019), MNIST; n,t = degree, plaintext moduli
    {"model": "CryptoNets", "activations": 945, "nt": "4096,2", "latency_s": 250, "throughput": 58982, "accuracy": 98.95},
    {"model": "DNN-30", "activations": 30, "nt": "4096,1", "latency_s": 1.14, "throughput": 12933344, "accuracy": 97.40},
    {"model": "DNN-100", "activations": 100, "nt": "4096,1", "latency_s": 3.28, "throughput": 4494965, "accuracy": 98.01},
    {"model": "CNN-16", "activations": 3236, "nt": "8192,2", "latency_s": 192, "throughput": 153600, "accuracy": 98.96},
    {"model": "CNN-16 L0", "activations": 762, "nt": "8192,2", "latency_s": 60, "throughput": 491520, "accuracy": 98.91},
]
DEFAULT_CONFIGS = ("mnist_dnn30", "mnist_dnn100", "mnist_cnn16", "mnist_cnn16_fast", "mnist_cnn16_2primes",
                   "mnist_cnn16_l0", "mnist_dnn30_ckks")
L0_PAIR = ("CNN-16 L0", "CNN-16 (4-bit inputs, 5-bit weights)")  # the sparsifier and CNN-16 at its quantisation


def measure_one(config_path, overrides, tenseal):
    """Run one config (in this process) and, for dense models, the TenSEAL reference."""
    import numpy as np

    from experiments import load_config
    from experiments.runner import measure, prepare
    config = load_config(config_path, overrides)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    model, plan, data = prepare(config, log=log, verbose=0)
    results = measure(config, model, plan, data, log=log, verbose=0)
    results.pop("config", None)
    if tenseal and plan.scheme == "bfv":
        from benchmarks import tenseal_reference
        try:
            tenseal_reference.dense_layers(model)
        except ValueError as err:
            results["tenseal"] = {"skipped": str(err)}
        else:
            x = data[1][0][:plan.parameters.slot_count]
            reference = tenseal_reference.run(model, plan, plan.quantize(x), config.evaluation.repeats)
            expected = np.asarray(model.predict_discretized(x)).astype(object)
            outputs = reference.pop("outputs")
            reference["exact"] = bool(np.array_equal(outputs.astype(object), expected))
            reference["samples"] = len(x)
            reference["throughput_per_hour"] = len(x) / reference["forward_s"] * 3600
            from experiments.runner import peak_memory_mb
            reference["peak_memory_mb_process"] = peak_memory_mb()
            results["tenseal"] = reference
    return results


def table(rows, facts):
    """The markdown report: paper, ours, TenSEAL."""
    lines = ["# SEALion's table, reproduced", "",
             "Paper (SEALion, 2019, MNIST; n,t = ring degree, plaintext moduli):", "",
             "| Model | Activations | n,t | Latency s | Throughput /h | Accuracy % |", "|---|---|---|---|---|---|"]
    lines += [f"| {p['model']} | {p['activations']:,} | {p['nt']} | {p['latency_s']} | {p['throughput']:,} | "
              f"{p['accuracy']:.2f} |" for p in PAPER]
    lines += ["", "Ours, measured in this run (2 cores; latency = server forward time of one full batch; "
              "throughput = batch / latency):", "",
              "| Model | Dataset | Scheme | Activations | n,t | Batch | Latency s | Throughput /h | Accuracy % "
              "(plain / discretised / encrypted) | Exact | Peak MB | TenSEAL forward s | Ours vs TenSEAL |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['config']}: FAILED ({r['failed']}) |" + " |" * 12)
            continue
        moduli = r["plain_moduli"]
        nt = f"{r['poly_modulus_degree']},{len(moduli) if moduli else '-'}"
        acc = " / ".join("-" if r.get(k) is None else f"{100 * r[k]:.2f}"
                         for k in ("plaintext_accuracy", "discretized_accuracy", "encrypted_accuracy"))
        ts_row = r.get("tenseal") or {}
        ts_s = f"{ts_row['forward_s']:.2f}" + ("" if ts_row.get("exact") else " (WRONG)") if "forward_s" in ts_row else "-"
        ratio = f"{ts_row['forward_s'] / r['latency_s']:.2f}x" if "forward_s" in ts_row else "-"
        lines.append(f"| {r['model']} | {r['dataset']} | {r['scheme'].upper()} | {r['activations']:,} | {nt} | "
                     f"{r['batch_size']:,} | {r['latency_s']:.2f} | {r['throughput_per_hour']:,.0f} | {acc} | "
                     f"{r.get('exact', '-')} | {r['peak_memory_mb']:,.0f} | {ts_s} | {ratio} |")
    lines += l0_lines(rows)
    splits = sorted({str(r["tenseal"]["coeff_mod_bit_sizes"]) for r in rows
                     if "coeff_mod_bit_sizes" in (r.get("tenseal") or {})})
    if splits:
        lines += ["", f"TenSEAL ran on SEAL's default coefficient primes {', '.join(splits)} (same bits as ours; "
                      "see benchmarks/tenseal_reference.py)."]
    lines += ["", machine_line(facts)]
    return "\n".join(lines)


def l0_lines(rows):
    """CNN-16 L0 against unpruned CNN-16 at the same quantisation, both from this run (MNIST)."""
    by_model = {r.get("model"): r for r in rows if "failed" not in r and r.get("dataset") == "mnist"}
    pruned, full = (by_model.get(name) for name in L0_PAIR)
    if pruned is None or full is None:
        return []
    return ["", f"CNN-16 L0 vs CNN-16 at the same quantisation, this run: {pruned['activations']:,} vs "
                f"{full['activations']:,} activations, {full['latency_s'] / pruned['latency_s']:.2f}x the "
                f"throughput ({pruned['throughput_per_hour']:,.0f} vs {full['throughput_per_hour']:,.0f} per hour); "
                f"SEALion: 762 vs 3,236 activations, 3.2x (491,520 vs 153,600 per hour)."]


def plot(rows, path):
    """Bar charts of throughput (log scale) and accuracy per model, the paper's beside ours."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = {p["model"]: p for p in PAPER}
    ours = {}
    for r in rows:
        if "failed" in r:
            continue
        label = r["model"] if r["scheme"] == "bfv" else f"{r['model']} ({r['scheme'].upper()})"
        if r["dataset"] != "mnist":
            label += f" [{r['dataset']}]"
        ours[label] = r
    labels = list(paper) + [label for label in ours if label not in paper]
    x = range(len(labels))
    figure, (speed, accuracy) = plt.subplots(2, 1, figsize=(max(7, 1.3 * len(labels)), 7), sharex=True)
    panels = ((speed, lambda p: p["throughput"], lambda r: r["throughput_per_hour"], "samples per hour (log)"),
              (accuracy, lambda p: p["accuracy"], lambda r: 100 * r["encrypted_accuracy"], "encrypted accuracy %"))
    for axes, paper_value, our_value, unit in panels:
        theirs = axes.bar([i - 0.2 for i in x], [paper_value(paper[m]) if m in paper else 0 for m in labels],
                          width=0.4, color="tab:gray", label="SEALion paper (2019)")
        mine = axes.bar([i + 0.2 for i in x], [our_value(ours[m]) if m in ours else 0 for m in labels], width=0.4,
                        color="tab:blue", label="ours (this run)")
        if axes is accuracy:  # differences of tenths of a point: print the values on the bars
            for bars in (theirs, mine):
                axes.bar_label(bars, labels=[f"{bar.get_height():.2f}" if bar.get_height() else "" for bar in bars],
                               rotation=90, padding=-30, fontsize=7, color="white")
        axes.set_ylabel(unit)
        axes.grid(axis="y", alpha=0.3)
    speed.set_yscale("log")
    speed.set_title("SEALion's table: throughput and accuracy per model (MNIST unless noted)")
    speed.legend(loc="upper right", fontsize=8)
    known = [100 * r["encrypted_accuracy"] for r in ours.values()] + [p["accuracy"] for p in PAPER]
    accuracy.set_ylim(max(0, min(known) - 5), 100)
    accuracy.set_xticks(list(x), labels, rotation=30, ha="right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="config names in configs/ (or paths)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for every model, e.g. training.epochs=2")
    parser.add_argument("--no-tenseal", action="store_true", help="skip the TenSEAL reference")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--one", help=argparse.SUPPRESS)      # child mode: one config
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not any(o.startswith("evaluation.repeats=") for o in args.overrides):
        args.overrides.append("evaluation.repeats=3")
    if args.one:
        results = measure_one(args.one, args.overrides, not args.no_tenseal)
        Path(args.json).write_text(json.dumps(results, default=str))
        return 0
    rows = []
    for name in args.configs:
        path = Path(name) if name.endswith(".yaml") else ROOT / "configs" / f"{name}.yaml"
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--one", str(path), "--json", out.name]
            command += [f"--set={o}" for o in args.overrides] + (["--no-tenseal"] if args.no_tenseal else [])
            print(f"== {path.name}", flush=True)
            run = subprocess.run(command, cwd=ROOT)
            if run.returncode != 0:  # keep the other models' rows; say how this one ended
                how = f"signal {-run.returncode}" if run.returncode < 0 else f"exit code {run.returncode}"
                rows.append({"config": path.name, "failed": how})
                continue
            rows.append(json.loads(Path(out.name).read_text()))
    facts = machine()
    markdown = table(rows, facts)
    write_results(args.output, "sealion_table", {"machine": facts, "paper": PAPER, "runs": rows,
                                                 "overrides": args.overrides}, markdown)
    plot(rows, Path(args.output) / "sealion_table.png")
    print(markdown)
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
