"""Where a run's results go and how they read: output folders, results.json, markdown tables."""

import json
from pathlib import Path

#: Keys every results.json holds (issue 4's list); runs add more (timings per layer, config).
REQUIRED_KEYS = (
    "model", "dataset", "scheme", "security_bits", "poly_modulus_degree", "plain_moduli",
    "coeff_mod_bit_sizes", "parameters_count", "activations", "depth", "plaintext_accuracy",
    "discretized_accuracy", "encrypted_accuracy", "encrypted_samples", "agreement", "latency_s",
    "batch_size", "throughput_per_hour", "encrypt_s", "decrypt_s", "peak_memory_mb", "library_versions")

RESULT_FILES = ("results.json", "results.md")


def claim_output_dir(base, overwrite=False):
    """Return the folder this run writes into, never clobbering an earlier run.

    ``base`` itself when it holds no results (or ``overwrite`` is set); otherwise the first free
    ``base/run-2``, ``base/run-3``, ... so earlier results stay untouched.
    """
    base = Path(base)
    if overwrite or not any((base / name).exists() for name in RESULT_FILES):
        base.mkdir(parents=True, exist_ok=True)
        return base
    index = 2
    while (base / f"run-{index}").exists():
        index += 1
    folder = base / f"run-{index}"
    folder.mkdir(parents=True)
    return folder


def write_results(folder, results):
    """Write results.json and results.md into ``folder``; return their paths."""
    folder = Path(folder)
    json_path, md_path = folder / "results.json", folder / "results.md"
    json_path.write_text(json.dumps(results, indent=2, default=_plain) + "\n", encoding="utf-8")
    md_path.write_text(markdown_report(results), encoding="utf-8")
    return json_path, md_path


def _plain(value):
    """JSON for numpy scalars and other stragglers."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


TABLE_COLUMNS = ("Model", "Dataset", "Scheme", "Activations", "n,t", "Latency s", "Throughput /h",
                 "Accuracy %", "Encrypted accuracy %", "Agreement %")


def table_row(results):
    """One row of the SEALion-style table for a results dict."""
    moduli = results["plain_moduli"]
    nt = f"{results['poly_modulus_degree']},{len(moduli)}" if moduli else f"{results['poly_modulus_degree']},-"
    return (results["model"], results["dataset"], results["scheme"].upper(), f"{results['activations']:,}", nt,
            f"{results['latency_s']:.2f}", f"{results['throughput_per_hour']:,.0f}",
            _percent(results["plaintext_accuracy"]), _percent(results["encrypted_accuracy"]),
            _percent(results["agreement"]))


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}"


def markdown_table(rows, columns=TABLE_COLUMNS):
    """A markdown table from rows of strings."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_report(results):
    """results.md: the table row, then every figure of the run."""
    details = [f"- **{key}**: {_short(results[key])}" for key in results if key not in ("config", "layer_times_s")]
    layer_times = results.get("layer_times_s") or {}
    lines = [f"# {results['model']} on {results['dataset']} ({results['scheme'].upper()})", "",
             markdown_table([table_row(results)]), "## Figures", "", *details, ""]
    if layer_times:
        lines += ["## Server time per layer (s, summed over batches)", "",
                  markdown_table([(name, f"{seconds:.3f}") for name, seconds in layer_times.items()],
                                 ("Layer", "Seconds"))]
    return "\n".join(lines)


def _short(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
