"""Sweep the L0 penalty: train CNN-16 L0 per lambda, run it encrypted, plot the trade-off.

SEALion's first application as a curve: each lambda trains the config's model (gates before
its squares), prepares it (gates folded, pruned positions removed), encrypts a batch of test
images, runs the server forward pass and decrypts. The table holds lambda, activations
computed per sample, accuracies (float, discretised, encrypted), the server latency of one
batch and the throughput (a full batch per latency); the PNG plots accuracy against
activations and against encrypted latency.

    SEALION_DATA=../shared/data python applications/sparsifier/sweep.py            # MNIST CNN-16 L0
    python applications/sparsifier/sweep.py --lambdas 0 1e-4 3e-4 --epochs 5
    python applications/sparsifier/sweep.py --quick    # bundled digits, a small CNN: ~1 min

Writes sweep.json, sweep.md and sweep.png into --output (default runs/sparsifier_sweep; a
folder that already holds a sweep gets run-2/, run-3/, ...).
"""

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_CONFIG = ROOT / "configs" / "mnist_cnn16_l0.yaml"
DEFAULT_LAMBDAS = (0.0, 2e-4, 6e-4, 1.2e-3, 3e-3)
QUICK_CONFIG = {  # 8x8 digits, bundled: a one-square CNN with gates before the square, seconds per lambda
    "name": "sparsifier_sweep_quick",
    "dataset": {"name": "digits"},
    "model": {"name": "Digits CNN L0", "layers": [
        {"Conv2D": {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}},
        {"L0Gate": {"warmup_epochs": 0, "ramp_epochs": 1, "initial_log_alpha": 1.0}}, "Square", "Flatten",
        {"Dense": {"units": 10}}]},
    "training": {"epochs": 6, "batch_size": 32, "seed": 0},
    "encryption": {"scheme": "bfv", "input_bits": 4, "weight_bits": 4},
    "evaluation": {"samples": 64, "batch_size": 64},
}
QUICK_LAMBDAS = (0.0, 1e-2)
FIELDS = ("l0_lambda", "activations", "plaintext_accuracy", "discretized_accuracy", "encrypted_accuracy",
          "exact", "latency_s", "throughput_per_hour", "poly_modulus_degree", "plain_moduli")


def with_lambda(raw, l0_lambda, epochs=None, samples=None):
    """A copy of the raw config with every L0Gate's ``l0_lambda`` set (and epochs, samples)."""
    raw = copy.deepcopy(raw)
    found = 0
    for index, spec in enumerate(raw["model"]["layers"]):
        if isinstance(spec, dict) and "L0Gate" in spec:
            raw["model"]["layers"][index] = {"L0Gate": {**(spec["L0Gate"] or {}), "l0_lambda": float(l0_lambda)}}
            found += 1
        elif isinstance(spec, dict) and spec.get("class_name") == "L0Gate":
            spec.setdefault("config", {})["l0_lambda"] = float(l0_lambda)
            found += 1
        elif spec == "L0Gate":
            raw["model"]["layers"][index] = {"L0Gate": {"l0_lambda": float(l0_lambda)}}
            found += 1
    if not found:
        raise ValueError("The config's model.layers hold no L0Gate: nothing to sweep. Use "
                         "configs/mnist_cnn16_l0.yaml or add L0Gate layers before the squares.")
    if epochs is not None:
        raw.setdefault("training", {})["epochs"] = int(epochs)
    if samples is not None:
        raw.setdefault("evaluation", {})["samples"] = int(samples)
    raw["name"] = f"{raw.get('name', 'sweep')}_lambda_{l0_lambda:g}"
    return raw


def run_one(raw, source, log):
    """Train, prepare and run one config encrypted; returns the row's figures."""
    from experiments import parse_config
    from experiments.runner import measure, prepare
    config = parse_config(raw, source=source)
    model, plan, data = prepare(config, log=log, verbose=0)
    results = measure(config, model, plan, data, log=log, verbose=0)
    return {key: results.get(key) for key in FIELDS if key != "l0_lambda"}


def table(rows, title):
    lines = [f"# {title}", "",
             "| lambda | Activations | Accuracy % (plain / discretised / encrypted) | Exact | Latency s | "
             "Throughput /h | n,t |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = " / ".join("-" if r.get(k) is None else f"{100 * r[k]:.2f}"
                         for k in ("plaintext_accuracy", "discretized_accuracy", "encrypted_accuracy"))
        lines.append(f"| {r['l0_lambda']:g} | {r['activations']:,} | {acc} | {r['exact']} | {r['latency_s']:.2f} | "
                     f"{r['throughput_per_hour']:,.0f} | {r['poly_modulus_degree']},{len(r['plain_moduli'])} |")
    return "\n".join(lines)


def plot(rows, path, title):
    """Accuracy against activations and against encrypted latency (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = sorted(rows, key=lambda r: r["activations"])
    accuracy = [100 * r["encrypted_accuracy"] for r in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, key, label in ((axes[0], "activations", "activations per sample (ciphertext products)"),
                             (axes[1], "latency_s", "encrypted latency per batch (s)")):
        values = [r[key] for r in rows]
        axis.plot(values, accuracy, "o-")
        for r, x, y in zip(rows, values, accuracy):
            axis.annotate(f"λ={r['l0_lambda']:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        axis.set_xlabel(label)
        axis.set_ylabel("encrypted accuracy (%)")
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write(folder, rows, source, heading):
    """sweep.json, sweep.md and sweep.png for the rows so far; returns the markdown."""
    markdown = table(rows, heading)
    (folder / "sweep.json").write_text(json.dumps({"rows": rows, "config": source}, indent=2, default=str))
    (folder / "sweep.md").write_text(markdown + "\n", encoding="utf-8")
    plot(rows, folder / "sweep.png", heading)
    return markdown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="a config with L0Gate layers")
    parser.add_argument("--lambdas", nargs="+", type=float, help=f"L0 penalties (default {list(DEFAULT_LAMBDAS)})")
    parser.add_argument("--epochs", type=int, help="training epochs per lambda (default: the config's)")
    parser.add_argument("--samples", type=int, help="test images encrypted per lambda (default: the config's)")
    parser.add_argument("--output", default=str(ROOT / "runs" / "sparsifier_sweep"))
    parser.add_argument("--quick", action="store_true", help="bundled digits, a small CNN, two lambdas")
    args = parser.parse_args(argv)
    if args.quick:
        raw, source, lambdas, title = QUICK_CONFIG, "sweep --quick", args.lambdas or QUICK_LAMBDAS, "digits (quick)"
    else:
        path = Path(args.config)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        source, lambdas, title = str(path), args.lambdas or DEFAULT_LAMBDAS, raw.get("model", {}).get("name", path.stem)
    import applications  # noqa: F401  (registers L0Gate)
    from experiments.results import claim_output_dir
    folder = claim_output_dir(args.output)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    rows = []
    for l0_lambda in lambdas:
        started = time.perf_counter()
        print(f"== lambda {l0_lambda:g}", flush=True)
        row = {"l0_lambda": l0_lambda, **run_one(with_lambda(raw, l0_lambda, args.epochs, args.samples), source, log)}
        row["run_s"] = time.perf_counter() - started
        rows.append(row)
        print(f"   {row['activations']:,} activations, encrypted accuracy {100 * row['encrypted_accuracy']:.2f}%, "
              f"latency {row['latency_s']:.2f} s, exact {row['exact']}", flush=True)
        markdown = write(folder, rows, source, f"L0 sweep: {title}")   # after every lambda: nothing is lost
    print(markdown)
    print(f"Written to {folder}")
    return 0 if all(r["exact"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
