"""The two pictures of a transfer-learning run (matplotlib, Agg backend: no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_accuracy(accuracy, path, title=""):
    """Test accuracy vs labels per class: decrypted latents vs raw pixels (mean +- std over draws).

    Args:
        accuracy: ``{k: {"latent_mean", "latent_std", "pixel_mean", "pixel_std"}}``.
    """
    ks = sorted(int(k) for k in accuracy)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for prefix, label, marker in (("latent", "decrypted VAE latents", "o"), ("pixel", "raw pixels", "s")):
        means = [100 * accuracy[k][f"{prefix}_mean"] for k in ks]
        stds = [100 * accuracy[k][f"{prefix}_std"] for k in ks]
        ax.errorbar(ks, means, yerr=stds, marker=marker, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "Logistic regression on few labels")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_reconstructions(images, reconstructions, path, title=""):
    """Test images (top row) beside the decoder's reconstructions from decrypted latents (bottom)."""
    images, reconstructions = np.asarray(images), np.asarray(reconstructions)
    count = len(images)
    fig, axes = plt.subplots(2, max(count, 1), figsize=(1.1 * max(count, 1), 2.5), squeeze=False)
    for row, batch in enumerate((images, reconstructions)):
        for i in range(count):
            axes[row][i].imshow(batch[i].reshape(batch[i].shape[:2]), cmap="gray", vmin=0, vmax=1)
        for ax in axes[row]:
            ax.axis("off")
    axes[0][0].set_title("test images", loc="left", fontsize=9)
    axes[1][0].set_title("decoded from decrypted latents", loc="left", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
