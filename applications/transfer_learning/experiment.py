"""``sealion run`` kind ``transfer_learning``: the whole encrypted transfer-learning experiment.

1. Server: train the VAE (encoder trunk = ``model.layers``, heads and decoder from ``vae:``) on
   the unlabelled pool (training images before the labelled split, labels never read); extract
   the mean head; prepare it for ``encryption.scheme``; write it with ``save_prepared``.
2. Client: for each of ``transfer.draws`` seeds draw k labelled examples per class from the
   labelled split (the last ``transfer.labelled_samples`` training images; nested in k);
   encrypt those images and the test images, send bytes; the server encodes them with public
   keys only; the client decrypts the latent codes.
3. Client: for every k and draw, a logistic regression on the decrypted latents and the same
   on raw pixels, both scored on the test images; reconstructions from decrypted latents.

Writes results.json, results.md, accuracy.png, reconstructions.png, prepared/ (the server's
encoder), decoder.keras and parameters.yaml.
"""

import sys
import time

import keras
import numpy as np

import heras
from experiments.building import layer_from_spec, make_optimizer
from experiments.config import ConfigError
from experiments.data import load_dataset
from experiments.progress import display_mode
from experiments.results import claim_output_dir, write_results
from primitives.serialization import library_versions
from . import plots
from .classifier import LogisticRegression
from .pipeline import check_against_plaintext, encode_encrypted, parameters_figures
from .splits import draw_per_class, split
from .vae import VAE, build_augmentation, build_decoder, build_encoder, mean_encoder, reconstruct


def run(config, output=None, overwrite=None, log=print, verbose=None):
    """Run a ``transfer_learning`` config; write and return its results (see the module docstring)."""
    vae_config, transfer = config.section("vae"), config.section("transfer")
    overwrite = config.output.overwrite if overwrite is None else overwrite
    folder = claim_output_dir(output or config.output_dir(), overwrite)
    started = time.perf_counter()
    keras.utils.set_random_seed(config.training.seed)
    (x_train, y_train), (x_test, y_test) = load_dataset(config)
    try:
        splits = split(len(x_train), transfer.labelled_samples, vae_config.pool_samples)
    except ValueError as err:
        raise ConfigError(f"transfer.labelled_samples / vae.pool_samples: {err}") from err
    pool = x_train[splits.pool]  # the server's images; their labels are never read
    x_labelled, y_labelled = x_train[splits.labelled], y_train[splits.labelled]

    vae, history = train(config, pool, log, verbose)
    encoder = mean_encoder(vae)
    e = config.encryption
    plan = encoder.prepare_encryption(e.scheme, security=e.security, calibration=pool, input_bits=e.input_bits,
                                      weight_bits=e.weight_bits, precision_bits=e.precision_bits)
    log(str(plan))
    heras.deployment.save_prepared(encoder, folder / "prepared", overwrite=True)
    vae.decoder.save(folder / "decoder.keras")
    (folder / "parameters.yaml").write_text(plan.parameters.to_yaml(), encoding="utf-8")

    # the client: draws, then one encrypted round trip for its drawn examples and the test images
    classes = int(y_train.max()) + 1
    ks, top = sorted(set(transfer.labels_per_class)), max(transfer.labels_per_class)
    try:
        draws = [draw_per_class(y_labelled, top, config.training.seed + d, classes).reshape(classes, top)
                 for d in range(transfer.draws)]
    except ValueError as err:
        raise ConfigError(f"transfer.labels_per_class: {err}") from err
    drawn = np.unique(np.concatenate([d.ravel() for d in draws]))
    samples = len(x_test) if config.evaluation.samples is None else min(config.evaluation.samples, len(x_test))
    x_eval, y_eval = x_test[:samples], y_test[:samples]
    queries = np.concatenate([x_labelled[drawn], x_eval])
    client = heras.deployment.Client.from_folder(folder / "prepared")
    server = heras.deployment.Server(folder / "prepared")
    log(f"Encrypted encoding: {len(drawn):,} drawn labelled images + {samples:,} test images")
    encoded = encode_encrypted(client, server, queries, config.evaluation.batch_size, log)
    check = check_against_plaintext(server.model, queries, encoded)
    latents_of = dict(zip(drawn.tolist(), encoded.latents[:len(drawn)]))
    z_eval = encoded.latents[len(drawn):]

    accuracy = {}
    for k in ks:
        latent_scores, pixel_scores = [], []
        for draw in draws:
            chosen = draw[:, :k].ravel()
            z = np.stack([latents_of[i] for i in chosen.tolist()])
            latent_scores.append(_classifier(transfer).fit(z, y_labelled[chosen], classes).score(z_eval, y_eval))
            pixel_scores.append(_classifier(transfer).fit(x_labelled[chosen], y_labelled[chosen], classes)
                                .score(x_eval, y_eval))
        accuracy[k] = {"latent_mean": float(np.mean(latent_scores)), "latent_std": float(np.std(latent_scores)),
                       "pixel_mean": float(np.mean(pixel_scores)), "pixel_std": float(np.std(pixel_scores)),
                       "latent_draws": latent_scores, "pixel_draws": pixel_scores}
        accuracy[k]["gain_points"] = 100 * (accuracy[k]["latent_mean"] - accuracy[k]["pixel_mean"])
        log(f"k={k:>4} labels/class: latents {100 * accuracy[k]['latent_mean']:.2f}%, pixels "
            f"{100 * accuracy[k]['pixel_mean']:.2f}% ({accuracy[k]['gain_points']:+.2f} points)")

    title = f"{config.dataset.name}: {len(pool):,} unlabelled images, {plan.scheme.upper()}"
    plots.plot_accuracy(accuracy, folder / "accuracy.png", title)
    shown = min(transfer.reconstructions, samples)
    if shown:
        plots.plot_reconstructions(x_eval[:shown], reconstruct(vae.decoder, z_eval[:shown]),
                                   folder / "reconstructions.png", title)
    costs = encoder.encryption_costs()
    results = {"kind": "transfer_learning", "model": config.model.name, "dataset": config.dataset.name,
               **parameters_figures(plan),
               "encoder": [f"{row['type']}{row['output_shape']}" for row in costs],
               "encoder_parameters": int(encoder.count_params()), "latent_dim": vae_config.latent_dim,
               "activations": int(sum(row["activations"] or 0 for row in costs)),
               "pool_samples": int(len(pool)), "labelled_split": int(len(x_labelled)),
               "pool_range": [splits.pool.start, splits.pool.stop],
               "labelled_range": [splits.labelled.start, splits.labelled.stop],
               "disjoint": splits.check_disjoint(), "test_samples": int(samples),
               "drawn_labelled_samples": int(len(drawn)), "draws": transfer.draws,
               "vae_final": {name: float(values[-1]) for name, values in history.history.items()}
               if history else {},
               "classifier": repr(_classifier(transfer)),
               "accuracy": {str(k): value for k, value in accuracy.items()},
               **encoded.figures(), **check,
               "library_versions": {**library_versions(), "keras": keras.__version__},
               "total_s": time.perf_counter() - started, "config": config.to_dict()}
    write(folder, results)
    results["output_dir"] = str(folder)
    log(f"Results written to {folder / 'results.json'}")
    return results


def train(config, pool, log=print, verbose=None):
    """Build the VAE of ``config`` and fit it on the unlabelled ``pool``; returns (vae, history)."""
    vae_config, training = config.section("vae"), config.training
    trunk = [layer_from_spec(spec, i) for i, spec in enumerate(config.model.layers)]
    try:
        encoder = build_encoder(pool.shape[1:], vae_config.latent_dim, trunk)
    except ValueError as err:
        raise ConfigError(f"model.layers (the encoder trunk): {err}") from err
    decoder = build_decoder(vae_config.latent_dim, pool.shape[1:], vae_config.decoder_units)
    augment = build_augmentation(vae_config.augment_rotation, vae_config.augment_translation,
                                 vae_config.augment_zoom, seed=training.seed)
    vae = VAE(encoder, decoder, beta=vae_config.beta, augment=augment)
    steps = int(np.ceil(len(pool) * (1 - training.validation_split) / training.batch_size))
    optimizer = make_optimizer(training, steps) or keras.optimizers.Adam(1e-3, clipnorm=1.0)
    vae.compile(optimizer=optimizer)
    if training.epochs == 0:
        return vae, None
    log(f"Training the VAE on {len(pool):,} unlabelled {config.dataset.name} images for {training.epochs} epochs")
    history = vae.fit(pool, epochs=training.epochs, batch_size=training.batch_size,
                      validation_split=training.validation_split, verbose=display_mode(verbose if verbose is not None else training.verbose))
    return vae, history


def _classifier(transfer):
    return LogisticRegression(l2=transfer.classifier_l2, steps=transfer.classifier_steps)


def write(folder, results):
    """results.json and results.md."""
    write_results(folder, results, report=markdown)


def markdown(results):
    """results.md: the accuracy table, then the encrypted encoder's figures."""
    lines = [f"# Encrypted transfer learning: {results['model']} on {results['dataset']} "
             f"({results['scheme'].upper()})", "", accuracy_table(results), "",
             f"Unlabelled pool: training images {results['pool_range'][0]}-{results['pool_range'][1] - 1} "
             f"({results['pool_samples']:,}, labels never read); labelled split: training images "
             f"{results['labelled_range'][0]}-{results['labelled_range'][1] - 1}; disjoint: {results['disjoint']}. "
             f"Accuracies on {results['test_samples']:,} test images, mean over {results['draws']} draws; "
             f"classifier {results['classifier']}.", "", "## Encrypted encoder", ""]
    for key in ("encoder", "activations", "depth", "security_bits", "poly_modulus_degree", "plain_moduli",
                "coeff_mod_bit_sizes", "encrypted_samples", "batch_size", "latency_s", "throughput_per_hour",
                "encrypt_s", "decrypt_s", "exact", "mismatched_samples", "max_abs_latent_error", "total_s"):
        if key in results:
            value = results[key]
            lines.append(f"- **{key}**: {f'{value:.6g}' if isinstance(value, float) else value}")
    return "\n".join(lines) + "\n"


def accuracy_table(results):
    """Markdown: labels per class, accuracy on decrypted latents vs pixels, gain."""
    rows = ["| labels per class | decrypted latents % | raw pixels % | gain (points) |", "|---|---|---|---|"]
    for k, a in results["accuracy"].items():
        rows.append(f"| {k} | {100 * a['latent_mean']:.2f} +- {100 * a['latent_std']:.2f} | "
                    f"{100 * a['pixel_mean']:.2f} +- {100 * a['pixel_std']:.2f} | {a['gain_points']:+.2f} |")
    return "\n".join(rows)


def summary(results):
    """What ``sealion run`` prints, and its exit code (1 when BFV latents differ from the
    discretised encoder's)."""
    text = accuracy_table(results) + (f"\n\nEncrypted encoder: latency {results['latency_s']:.2f} s per batch of "
                                      f"{results['batch_size']:,}, throughput {results['throughput_per_hour']:,.0f}"
                                      f"/h, exact: {results['exact']}\n")
    if results.get("exact") is False:
        print(f"ERROR: {results['mismatched_samples']} decrypted latent codes differ from the discretised "
              "encoder's; see results.json.", file=sys.stderr)
        return text, 1
    return text, 0
