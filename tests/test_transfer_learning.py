"""Encrypted transfer learning (applications/transfer_learning): splits, classifier, VAE, the demo
scripts as separate processes exchanging files, and ``sealion run`` kind transfer_learning."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

import heras
from applications.transfer_learning.classifier import LogisticRegression
from applications.transfer_learning.splits import draw_per_class, split
from experiments import ConfigError, parse_config
from experiments.cli import main
from tests.helpers import secret_key_bytes

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("server_train", "client_encrypt", "server_encode", "client_evaluate")


def digits_config(**changes):
    raw = {"kind": "transfer_learning", "name": "transfer_digits", "dataset": {"name": "digits"},
           "model": {"layers": ["Flatten", {"Dense": {"units": 16}}, "Square"]},
           "training": {"epochs": 8, "batch_size": 64, "verbose": 0},
           "vae": {"latent_dim": 6, "decoder_units": [32]},
           "transfer": {"labelled_samples": 400, "labels_per_class": [1, 3], "draws": 2,
                        "classifier_steps": 200, "reconstructions": 4},
           "evaluation": {"samples": 100}}
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw.setdefault(section, {})[key] = value
    return raw


# ----------------------------------------------------------------- pieces
def test_pool_and_labelled_split_are_disjoint_and_draws_nested():
    splits = split(60000, 10000)
    assert (splits.pool.start, splits.pool.stop, splits.labelled.start, splits.labelled.stop) == (0, 50000, 50000, 60000)
    assert splits.check_disjoint()
    labels = np.repeat(np.arange(10), 20)
    ten, one = draw_per_class(labels, 10, seed=3), draw_per_class(labels, 1, seed=3)
    assert np.array_equal(np.bincount(labels[ten]), np.full(10, 10)) and len(set(ten)) == 100
    assert np.array_equal(ten.reshape(10, 10)[:, 0], one)  # more labels add examples, never swap them
    with pytest.raises(ValueError, match="Class 0 has 20 labelled examples; k=21"):
        draw_per_class(labels, 21, seed=0)
    with pytest.raises(ValueError, match="pool_samples <= 50000"):
        split(60000, 10000, pool_samples=50001)


def test_logistic_regression_learns_and_stays_finite_on_constant_features(rng):
    centres = rng.normal(size=(3, 5)) * 4
    y = np.repeat(np.arange(3), 30)
    x = centres[y] + rng.normal(size=(90, 5))
    x = np.hstack([x, np.zeros((90, 2))])  # constant features (blank pixels)
    model = LogisticRegression(l2=0.01, steps=300).fit(x, y)
    assert model.score(x, y) > 0.95
    assert np.all(np.isfinite(model.weights))
    with pytest.raises(RuntimeError, match="fit"):
        LogisticRegression().predict(x)


def test_vae_trains_with_keras_and_its_mean_head_is_extracted_and_served_with_ckks(rng, tmp_path):
    from applications.transfer_learning.vae import VAE, build_decoder, build_encoder, mean_encoder, train_vae
    keras.utils.set_random_seed(0)
    (x, _), _ = heras.datasets.digits.load_data()
    x = (x[:512, ..., None] / 16.0).astype("float32")
    vae = VAE(build_encoder(x.shape[1:], 4, [heras.layers.Flatten(), heras.layers.Dense(16), heras.layers.Square()]),
              build_decoder(4, x.shape[1:], (32,)))
    history = train_vae(vae, x, epochs=6, batch_size=64, learning_rate=3e-3, verbose=0)
    losses = history.history["loss"]
    assert set(history.history) >= {"loss", "reconstruction", "kl"} and losses[-1] < 0.85 * losses[0]
    served = mean_encoder(vae)
    assert isinstance(served, heras.models.Sequential) and len(served.outputs) == 1
    np.testing.assert_array_equal(served.predict(x, verbose=0), vae.encoder.predict(x, verbose=0)[0])

    # CKKS: the served mean head through Client and Server, within its proven error bound
    from applications.transfer_learning.pipeline import check_against_plaintext, encode_encrypted
    plan = served.prepare_encryption("ckks", calibration=x, precision_bits=10)
    folder = tmp_path / "ckks"
    heras.deployment.save_prepared(served, folder)
    client, server = heras.deployment.Client.from_folder(folder), heras.deployment.Server(folder)
    encoded = encode_encrypted(client, server, x[:40], log=lambda *_: None)
    figures = check_against_plaintext(server.model, x[:40], encoded)
    assert figures["exact"] is None and figures["error_bound"] == plan.error_bound
    assert figures["max_abs_latent_error"] <= plan.error_bound < 2.0 ** -10
    assert encoded.figures()["encrypted_samples"] == 40 and encoded.figures()["latency_s"] > 0


# ----------------------------------------------------------------- demo scripts
def _script(name, *args, cwd):
    run = subprocess.run([sys.executable, "-m", f"applications.transfer_learning.{name}", *map(str, args)],
                         capture_output=True, text=True, timeout=900, cwd=cwd,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_demo_script_has_help(name, tmp_path):
    out = _script(name, "--help", cwd=tmp_path)
    assert "--quick" in out and "usage" in out


def test_demo_roles_in_separate_processes_exchange_only_files_without_the_secret_key(tmp_path):
    deploy, me, outbox, inbox = tmp_path / "deploy", tmp_path / "me", tmp_path / "outbox", tmp_path / "inbox"
    _script("server_train", "--out", deploy, "--quick", cwd=tmp_path)
    client_view = tmp_path / "client_view"  # the client is handed public/ only
    client_view.mkdir()
    for path in (deploy / "public").iterdir():
        (client_view / path.name).write_bytes(path.read_bytes())
    assert not (client_view / "model.keras").exists() and not (client_view / "plan.json").exists()
    _script("client_encrypt", "--public", client_view, "--client", me, "--outbox", outbox, "--quick", cwd=tmp_path)
    _script("server_encode", "--server", deploy / "server", "--outbox", outbox, "--inbox", inbox, "--quick",
            cwd=tmp_path)
    out = _script("client_evaluate", "--public", client_view, "--client", me, "--inbox", inbox, "--quick",
                  cwd=tmp_path)
    assert "latents" in out and (me / "reconstructions.png").stat().st_size > 1000

    # nothing the client sent holds its secret key
    client = heras.deployment.Client.load_keys(client_view, me / "client.keys")
    keys = secret_key_bytes(client.context)
    sent = {path.name: path.read_bytes() for path in outbox.iterdir()}
    assert set(sent) == {"public.ctx", "labelled.query", "test.query"}
    for name, data in sent.items():
        assert not any(key in data for key in keys), f"{name} contains the secret key"

    # the decrypted latents are the discretised encoder's integers, on every example (BFV)
    server_model = heras.deployment.load_prepared(deploy / "server")
    labels = np.load(me / "labels.npz")
    (x_train, _), (x_test, _) = heras.datasets.digits.load_data()
    latents = np.load(me / "latents.npz")
    for images, decrypted in ((x_train[labels["train_indices"]], latents["labelled"]),
                              (x_test[labels["test_indices"]], latents["test"])):
        expected = np.asarray(server_model.predict_discretized(images[..., None] / 16.0), dtype=np.float64)
        np.testing.assert_array_equal(decrypted, expected / server_model.encryption_plan.output_scale)
    split_record = json.loads((client_view / "split.json").read_text())
    assert set(labels["train_indices"].tolist()).isdisjoint(range(*split_record["pool"]))
    evaluation = json.loads((me / "evaluation.json").read_text())
    assert 0.2 < evaluation["latent_accuracy"] <= 1 and 0.2 < evaluation["pixel_accuracy"] <= 1


# ----------------------------------------------------------------- sealion run
def test_transfer_config_sections_are_typed_and_checked():
    config = parse_config(digits_config())
    assert config.section("vae").latent_dim == 6 and config.section("transfer").labels_per_class == (1, 3)
    for changes, message in (({"vae__latent_dim": 0}, "vae.latent_dim: expected an integer >= 1"),
                             ({"vae__decoder_units": [0]}, "vae.decoder_units: expected a list of positive"),
                             ({"transfer__labels_per_class": []}, "transfer.labels_per_class"),
                             ({"transfer__draws": "five"}, "transfer.draws: expected an integer"),
                             ({"transfer__lables": 3}, r"Unknown key\(s\) \['lables'\] in section 'transfer'")):
        with pytest.raises(ConfigError, match=message):
            parse_config(digits_config(**changes))
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['transfer', 'vae'\] in the top level \(kind 'inference'\)"):
        parse_config({k: v for k, v in digits_config().items() if k != "kind"})


def test_sealion_run_transfer_learning_writes_results_and_pictures(tmp_path, capsys):
    path = tmp_path / "transfer_digits.yaml"
    path.write_text(yaml.safe_dump(digits_config()))
    assert main(["run", str(path), "--output", str(tmp_path / "out")]) == 0
    assert "| labels per class |" in capsys.readouterr().out
    folder = tmp_path / "out"
    results = json.loads((folder / "results.json").read_text())
    assert results["kind"] == "transfer_learning" and results["scheme"] == "bfv"
    assert results["exact"] is True and results["mismatched_samples"] == 0
    assert results["security_bits"] == 128 and results["disjoint"] is True
    assert results["pool_range"] == [0, 1037] and results["labelled_range"] == [1037, 1437]
    assert set(results["accuracy"]) == {"1", "3"}
    for row in results["accuracy"].values():
        assert len(row["latent_draws"]) == 2 and 0 < row["latent_mean"] <= 1 and 0 < row["pixel_mean"] <= 1
    assert results["encrypted_samples"] == results["drawn_labelled_samples"] + 100
    assert results["latency_s"] > 0 and results["throughput_per_hour"] > 0
    for name in ("results.md", "accuracy.png", "reconstructions.png", "decoder.keras", "parameters.yaml",
                 "prepared/client.json"):
        assert (folder / name).is_file(), name
    assert "| 3 |" in (folder / "results.md").read_text()
    too_many = tmp_path / "too_many.yaml"
    too_many.write_text(yaml.safe_dump(digits_config(transfer__labels_per_class=[500], training__epochs=0)))
    with pytest.raises(ConfigError, match="transfer.labels_per_class: Class 0 has"):
        from experiments.config import load_config
        from applications.transfer_learning.experiment import run
        run(load_config(too_many), output=tmp_path / "out2", log=lambda *_: None)
