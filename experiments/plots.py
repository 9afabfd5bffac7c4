"""The PNG figures of a run, written beside results.md (matplotlib, Agg: no display needed).

- ``training_curves.png``: loss and accuracy per epoch, training and validation (when the run
  trained a model);
- ``layer_times.png``: server time per layer of the encrypted forward pass;
- ``noise_budget.png``: BFV noise budget left after each layer, measured with the secret key
  and as the model estimated it (BFV runs).

Each function returns the file name written, or None when the run has nothing to plot.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, also without a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def write_plots(folder, results):
    """Write every plot ``results`` has data for into ``folder``; return ``{title: file name}``."""
    folder = Path(folder)
    written = {}
    for title, plot in (("Training curves", training_curves), ("Server time per layer", layer_times),
                        ("BFV noise budget per layer", noise_budget)):
        name = plot(folder, results)
        if name is not None:
            written[title] = name
    return written


def training_curves(folder, results, name="training_curves.png"):
    """Loss and accuracy per epoch, training and validation, from ``training_history``."""
    history = results.get("training_history") or {}
    if not history.get("loss"):
        return None
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for axes, metric, label in ((loss_axes, "loss", "loss"), (accuracy_axes, "accuracy", "accuracy")):
        for key, style, which in ((metric, "o-", "training"), (f"val_{metric}", "s--", "validation")):
            if history.get(key):
                axes.plot(epochs, history[key], style, label=which, markersize=3)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    loss_axes.set_title(f"{results['model']} on {results['dataset']}: loss")
    accuracy_axes.set_title("accuracy (plaintext training)")
    return _save(figure, folder, name)


def layer_times(folder, results, name="layer_times.png"):
    """Bar chart of ``layer_times_s``: server seconds per layer, summed over batches."""
    times = results.get("layer_times_s") or {}
    if not times:
        return None
    figure, axes = plt.subplots(figsize=(max(6, 0.8 * len(times) + 2), 4))
    axes.bar(list(times), list(times.values()), color="tab:blue")
    axes.set_ylabel("seconds")
    axes.set_title(f"{results['model']} ({results['scheme'].upper()}): encrypted time per layer, "
                   f"{results.get('batches', 1)} batch(es)")
    axes.tick_params(axis="x", labelrotation=45)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, folder, name)


def noise_budget(folder, results, name="noise_budget.png"):
    """BFV: bits of noise budget left after each layer, measured and estimated."""
    budget = results.get("noise_budget_bits") or {}
    if not budget:
        return None
    layers = list(budget)
    positions = range(len(layers))
    figure, axes = plt.subplots(figsize=(max(6, 0.9 * len(layers) + 2), 4))
    measured = [budget[layer].get("measured") for layer in layers]
    axes.bar([p - 0.2 for p in positions], [m if m is not None else 0 for m in measured], width=0.4,
             label="measured (secret key, min over ciphertexts)", color="tab:green")
    axes.bar([p + 0.2 for p in positions], [budget[layer]["estimated"] for layer in layers], width=0.4,
             label="estimated (noise model, conservative)", color="tab:gray")
    axes.set_xticks(list(positions), layers, rotation=45)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel("noise budget left (bits)")
    axes.set_title(f"{results['model']}: BFV noise budget after each layer (first batch)")
    tallest = max([budget[layer]["estimated"] for layer in layers] + [m or 0 for m in measured])
    axes.set_ylim(top=max(1.0, tallest) * 1.35)  # room for the legend above the bars
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, folder, name)


def _save(figure, folder, name):
    figure.tight_layout()
    figure.savefig(Path(folder) / name, dpi=100)
    plt.close(figure)
    return name
