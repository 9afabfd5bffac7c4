"""Where a run's results go and how they read: output folders, results.json, markdown tables."""

import json
from pathlib import Path

from primitives.errors import SealionError

#: Keys every results.json holds (issue 4's list); runs add more (timings per layer, config).
REQUIRED_KEYS = (
    "model", "dataset", "scheme", "security_bits", "poly_modulus_degree", "plain_moduli",
    "coeff_mod_bit_sizes", "parameters_count", "activations", "depth", "plaintext_accuracy",
    "discretized_accuracy", "encrypted_accuracy", "encrypted_samples", "agreement", "latency_s",
    "batch_size", "throughput_per_hour", "encrypt_s", "decrypt_s", "peak_memory_mb", "library_versions")

RESULT_FILES = ("results.json", "results.md")


class ResultCheckError(SealionError):
    """A finished run measured something its guarantees rule out (BFV decryptions that differ
    from the discretised model, a CKKS error above the proven bound). The results were written
    for inspection; ``results`` holds them."""

    def __init__(self, message, results=None):
        super().__init__(message)
        self.results = results


def check_results(results):
    """What a run's figures show to be wrong, as sentences (empty when every guarantee held).

    BFV: decryptions equal the discretised model's integers bit for bit. CKKS: the measured
    ``max_abs_error`` (against the float64 evaluation of the same layers) is at most the proven
    ``proven_error_bound``.
    """
    failures = []
    if results.get("exact") is False:
        failures.append(f"{results.get('mismatched_samples')} encrypted predictions differ from the "
                        "discretised model's integers (BFV must be exact)")
    error, bound = results.get("max_abs_error"), results.get("proven_error_bound")
    if error is not None and bound is not None and not error <= bound:
        failures.append(f"the measured CKKS error max_abs_error = {error:.3g} exceeds the proven bound "
                        f"proven_error_bound = {bound:.3g} (vs the float64 evaluation of the same layers)")
    return failures


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


def write_results(folder, results, report=None):
    """Write results.json and results.md into ``folder``; return their paths.

    ``report(results)`` renders results.md (default: the inference run's report); every
    experiment kind writes its files through here, so results.json is encoded one way.
    """
    folder = Path(folder)
    json_path, md_path = folder / "results.json", folder / "results.md"
    json_path.write_text(json.dumps(results, indent=2, default=_plain) + "\n", encoding="utf-8")
    md_path.write_text((report or markdown_report)(results), encoding="utf-8")
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


#: Figures results.md shows in sections of their own (or not at all) rather than in the list.
_OWN_SECTIONS = ("config", "layer_times_s", "plots", "training_history", "noise_budget_bits", "latencies_s")


def markdown_report(results):
    """results.md: the table row, any failed check, every figure of the run, then the plots."""
    details = [f"- **{key}**: {_short(results[key])}" for key in results if key not in _OWN_SECTIONS]
    layer_times = results.get("layer_times_s") or {}
    failures = check_results(results)
    lines = [f"# {results['model']} on {results['dataset']} ({results['scheme'].upper()})", ""]
    if failures:
        lines += [f"**CHECK FAILED**: {failure}." for failure in failures] + [""]
    lines += [markdown_table([table_row(results)]), "## Figures", "", *details, ""]
    if results.get("scheme") == "ckks" and results.get("max_abs_error") is not None:
        lines += [f"CKKS error: measured {results['max_abs_error']:.3g} against the float64 evaluation of the "
                  f"same layers; proven bound {results['proven_error_bound']:.3g}.", ""]
    if layer_times:
        lines += ["## Server time per layer (s, summed over batches)", "",
                  markdown_table([(name, f"{seconds:.3f}") for name, seconds in layer_times.items()],
                                 ("Layer", "Seconds"))]
    noise = results.get("noise_budget_bits") or {}
    if noise:
        lines += ["## BFV noise budget left per layer (bits, first batch)", "",
                  markdown_table([(name, _short(row.get("measured")), f"{row['estimated']:.1f}")
                                  for name, row in noise.items()], ("Layer", "Measured", "Estimated"))]
    plots = results.get("plots") or {}
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{title}]({name})" for title, name in plots.items()] + [""]
    return "\n".join(lines)


def _short(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
