"""``kind: encrypted_training``: train on CKKS ciphertexts, compare with the same plaintext SGD.

The data owner (in this process, with the secret key) plans, makes keys, packs and encrypts the
training set; the server side trains with ``model.fit(enc_x, enc_y, ...)`` on public material,
refreshing through the key holder when the levels run out; the data owner decrypts the weights.
The same SGD (same initial weights, minibatches, rate, activation and loss) runs in float64
numpy as the reference. results.json holds encrypted_training_accuracy,
plaintext_training_accuracy, max_weight_error (relative), refreshes, refresh_bytes,
train_time_s, seconds_per_step and the per-step costs of the plan.
"""

import time

import keras
import numpy as np

import heras
import primitives as P
from heras.models import encrypted_training as ET
from primitives.serialization import library_versions
from primitives.training import predict
from primitives.training.layout import minibatches
from .building import build_model
from .config import ConfigError
from .results import claim_output_dir, markdown_table, write_results

DIGITS_STD_FLOOR = 0.25  # digits: (x/16 - mean) / (std + floor): border pixels of std ~0 stay small


def load_data(config):
    """((x_train, y_train), (x_test, y_test)) as float64 feature rows, standardised."""
    name, section = config.dataset.name, config.section("encrypted_training")
    if name == "iris":
        return heras.datasets.iris.load_data(test_fraction=section.test_fraction, seed=config.training.seed)
    if name != "digits":
        raise ConfigError(f"dataset.name: encrypted training runs on the bundled 'iris' or 'digits'. Found {name!r}.")
    (x_train, y_train), (x_test, y_test) = heras.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1) / float(heras.datasets.digits.MAX_PIXEL)
    x_test = x_test.reshape(len(x_test), -1) / float(heras.datasets.digits.MAX_PIXEL)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + DIGITS_STD_FLOOR
    return ((x_train - mean) / std, y_train.astype(np.int64)), ((x_test - mean) / std, y_test.astype(np.int64))


def run(config, output=None, overwrite=None, log=print, verbose=None):
    """Train encrypted and in plaintext, write results.json / results.md; return the results."""
    overwrite = config.output.overwrite if overwrite is None else overwrite
    folder = claim_output_dir(output or config.output_dir(), overwrite)
    t, section = config.training, config.section("encrypted_training")
    if t.learning_rate is None:
        raise ConfigError("training.learning_rate: encrypted training runs plain SGD; give its rate (e.g. 0.5).")
    started = time.perf_counter()
    keras.utils.set_random_seed(t.seed)
    (x_train, y_train), (x_test, y_test) = load_data(config)
    model = build_model(config, x_train.shape[1:])
    try:
        ET.network_of(model)
    except NotImplementedError as err:
        raise ConfigError(f"model.layers: {err}") from err
    steps = t.epochs * len(minibatches(len(x_train), t.batch_size))
    log(f"Planning {steps} encrypted SGD steps on {len(x_train)} {config.dataset.name} samples")
    plan = ET.training_plan(model, t.batch_size, samples=len(x_train), epochs=t.epochs,
                            steps_per_refresh=section.steps_per_refresh or steps, security=config.encryption.security,
                            mask_bits=section.mask_bits, weight_bound=section.weight_bound)
    log(str(plan))
    owner = P.Context(plan.parameters)                       # the data owner's keys
    tick = time.perf_counter()
    enc_x, enc_y = ET.encrypt_training_data(model, owner, x_train, y_train, t.batch_size)
    encrypt_s = time.perf_counter() - tick
    reference, losses = ET.plaintext_fit(model, x_train, y_train, epochs=t.epochs, batch_size=t.batch_size,
                                         learning_rate=t.learning_rate)
    history = model.fit(enc_x, enc_y, epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                        key_holder=owner if plan.refreshes_needed else None, verbose=0 if verbose == 0 else 1,
                        seed=t.seed, mask_bits=section.mask_bits, weight_bound=section.weight_bound)
    model.decrypt_weights(owner)
    trained = model.decrypted_weights
    encrypted_accuracy = float(np.mean(predict(trained, x_test).argmax(axis=1) == y_test))
    keras_accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(axis=1) == y_test))
    p = plan.parameters
    results = {
        "model": config.model.name, "dataset": config.dataset.name, "scheme": "ckks", "kind": "encrypted_training",
        "encrypted_training_accuracy": encrypted_accuracy,
        "plaintext_training_accuracy": float(np.mean(predict(reference, x_test).argmax(axis=1) == y_test)),
        "decrypted_model_accuracy": keras_accuracy,
        "max_weight_error": trained.max_relative_error(reference),
        "refreshes": history["refreshes"], "refresh_bytes": history["refresh_bytes"],
        "train_time_s": history["train_time_s"], "seconds_per_step": history["seconds_per_step"],
        "steps": history["steps"], "seconds_per_epoch": history["train_time_s"] / max(1, t.epochs),
        "encrypt_s": encrypt_s, "final_plaintext_loss": losses[-1] if losses else None,
        "depth_per_step": plan.levels_per_step, "ct_ct_multiplications_per_step": plan.ct_ct_multiplications,
        "rotations_per_step": plan.rotations, "steps_per_refresh": plan.steps_per_refresh,
        "poly_modulus_degree": p.poly_modulus_degree, "coeff_mod_bit_sizes": list(p.coeff_mod_bit_sizes),
        "scale_bits": p.scale_bits, "security_bits": p.security, "mask_bits": plan.mask_bits,
        "weight_bound": plan.weight_bound, "train_samples": len(x_train), "test_samples": len(x_test),
        "total_s": time.perf_counter() - started, "library_versions": library_versions(),
        "config": config.to_dict(),
    }
    write_results(folder, results, report=lambda r: _report(r, plan))
    results["output_dir"] = str(folder)
    log(f"Results written to {folder / 'results.json'}")
    return results


COLUMNS = ("Model", "Dataset", "Encrypted training acc %", "Plaintext training acc %", "Max weight error",
           "Steps", "Refreshes", "s / step", "Train time s")


def _row(r):
    return (r["model"], r["dataset"], f"{100 * r['encrypted_training_accuracy']:.2f}",
            f"{100 * r['plaintext_training_accuracy']:.2f}", f"{r['max_weight_error']:.2e}", r["steps"],
            r["refreshes"], f"{r['seconds_per_step']:.2f}", f"{r['train_time_s']:.1f}")


def _report(results, plan):
    figures = [f"- **{k}**: {v}" for k, v in results.items() if k not in ("config", "library_versions")]
    return "\n".join([f"# Encrypted training: {results['model']} on {results['dataset']}", "",
                      markdown_table([_row(results)], COLUMNS), "## Plan", "", "```", str(plan), "```", "",
                      "## Figures", "", *figures, ""])


def summary(results):
    """What ``sealion run`` prints, and its exit code (1 when the weights left the tolerance)."""
    text = markdown_table([_row(results)], COLUMNS)
    return text, 0 if results["max_weight_error"] < 1e-3 else 1
