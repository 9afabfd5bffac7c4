"""Step 4 (client): decrypt the latent codes, train a classifier on them, compare with pixels.

    python -m applications.transfer_learning.client_evaluate --public deploy/public \\
        --client me/ --inbox inbox/

Decrypts the server's answers with the client's keys, trains a logistic regression on the
latent codes of its labelled images and the same classifier on their raw pixels, scores both
on the test images, and writes evaluation.json, latents.npz and reconstructions.png (the
plaintext decoder applied to decrypted codes) into --client.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from applications.transfer_learning import _demo


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--public", required=True, help="the server's public/ folder (client.json, decoder.keras)")
    parser.add_argument("--client", required=True, help="the client's private folder (client_encrypt.py's)")
    parser.add_argument("--inbox", required=True, help="the server's answers")
    parser.add_argument("--data-dir", help="folder holding <dataset>.npz (default: $SEALION_DATA)")
    parser.add_argument("--l2", type=float, default=0.01, help="the classifier's L2 penalty")
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry (the work is fixed by step 2)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    import keras
    from heras.deployment import Client
    from applications.transfer_learning.classifier import LogisticRegression
    from applications.transfer_learning.plots import plot_reconstructions
    from applications.transfer_learning.vae import reconstruct

    client_dir, inbox, public = Path(args.client), Path(args.inbox), Path(args.public)
    client = Client.load_keys(public, client_dir / "client.keys")
    labels = np.load(client_dir / "labels.npz")
    dataset = json.loads((client_dir / "dataset.json").read_text())["dataset"]
    (x_train, _), (x_test, _) = _demo.load_images(dataset, args.data_dir)
    x_labelled, x_eval = x_train[labels["train_indices"]], x_test[labels["test_indices"]]
    z_labelled, z_eval = (client.decrypt((inbox / f"{name}.answer").read_bytes()) for name in _demo.QUERIES)
    classes = int(max(labels["y_labelled"].max(), labels["y_test"].max())) + 1
    latent = LogisticRegression(l2=args.l2).fit(z_labelled, labels["y_labelled"], classes)
    pixels = LogisticRegression(l2=args.l2).fit(x_labelled, labels["y_labelled"], classes)
    results = {"dataset": dataset, "labelled": int(len(x_labelled)), "test": int(len(x_eval)),
               "latent_accuracy": latent.score(z_eval, labels["y_test"]),
               "pixel_accuracy": pixels.score(x_eval, labels["y_test"]), "classifier": repr(latent)}
    (client_dir / "evaluation.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    np.savez(client_dir / "latents.npz", labelled=z_labelled, test=z_eval)
    decoder = keras.saving.load_model(public / "decoder.keras")
    shown = min(10, len(x_eval))
    plot_reconstructions(x_eval[:shown], reconstruct(decoder, z_eval[:shown]), client_dir / "reconstructions.png")
    print(f"{len(x_labelled)} labelled images, {len(x_eval)} test images: logistic regression on decrypted "
          f"latents {100 * results['latent_accuracy']:.2f}%, on raw pixels {100 * results['pixel_accuracy']:.2f}%")
    print(f"Written: {client_dir / 'evaluation.json'}, latents.npz, reconstructions.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
