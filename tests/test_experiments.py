"""YAML run configurations and `sealion run` / `sealion params CONFIG.yaml`."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

import primitives as P
from experiments import ConfigError, load_config, parse_config, run
from experiments.building import make_optimizer
from experiments.cli import main
from experiments.results import REQUIRED_KEYS, claim_output_dir

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
QUICKSTART = CONFIGS / "quickstart.yaml"


def quiet(*_):
    pass


def quickstart_raw(**changes):
    raw = yaml.safe_load(QUICKSTART.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw.setdefault(section, {})[key] = value
    return raw


# ----------------------------------------------------------------- config files
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid_and_says_what_it_is_for(path, monkeypatch, tmp_path):
    assert path.read_text().startswith("# "), f"{path.name} must open with a comment saying what it is for"
    config = load_config(path)
    assert config.name == path.stem
    assert config.model.layers and config.encryption.scheme in ("bfv", "ckks")


def test_issue_configs_exist():
    names = {p.stem for p in CONFIGS.glob("*.yaml")}
    assert {"quickstart", "mnist_dnn30", "mnist_dnn100", "mnist_cnn16"} <= names
    assert any("ckks" in n for n in names) and any(n.startswith("fashion") for n in names)


@pytest.mark.parametrize("changes, message", [
    ({"training__epochs": "ten"}, r"training\.epochs: expected an integer"),
    ({"training__epohcs": 3}, r"Unknown key\(s\) \['epohcs'\] in section 'training'"),
    ({"encryption__scheme": "rsa"}, r"encryption\.scheme: expected one of \['bfv', 'ckks'\]"),
    ({"encryption__security": 100}, r"encryption\.security"),
    ({"training__validation_split": 1.5}, r"validation_split"),
    ({"evaluation__samples": 0}, r"evaluation\.samples: expected an integer >= 1"),
    ({"dataset__name": "cifar"}, r"dataset\.name: expected one of"),
    ({"dataset__data_dir": "no/such/folder"}, r"dataset\.data_dir: folder 'no/such/folder' does not exist"),
    ({"model__load": "missing.keras"}, r"give either `layers`"),
    ({"encryption__parameters": "small"}, r"encryption\.parameters: expected `auto` or a mapping"),
    ({"training__seed": True}, r"training\.seed: expected an integer"),
])
def test_bad_values_name_the_key_and_the_fix(changes, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(quickstart_raw(**changes), source=str(QUICKSTART))


def test_unknown_top_level_keys_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['trainig'\] in the top level"):
        parse_config({**quickstart_raw(), "trainig": {}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    no_model = quickstart_raw()
    del no_model["model"]["layers"]
    with pytest.raises(ConfigError, match="model.layers: list the layers"):
        parse_config(no_model)


def test_kind_selects_a_known_experiment_and_refuses_others():
    assert parse_config(quickstart_raw()).kind == "inference"
    assert parse_config({**quickstart_raw(), "kind": "inference"}).kind == "inference"
    with pytest.raises(ConfigError, match=r"kind: expected one of 'inference'.*Found 'inferense'"):
        parse_config({**quickstart_raw(), "kind": "inferense"})
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['transfer'\] in the top level \(kind 'inference'\)"):
        parse_config({**quickstart_raw(), "transfer": {}})
    with pytest.raises(KeyError, match="has no config section 'transfer'"):
        parse_config(quickstart_raw()).section("transfer")


def test_overrides_are_typed_and_checked():
    config = load_config(QUICKSTART, ["training.epochs=3", "evaluation.samples=null"])
    assert config.training.epochs == 3 and config.evaluation.samples is None
    for override, message in (("training.epochs", "section.key=value"), ("epochs=3", "section.key=value"),
                              ("training.epochs=x", "training.epochs: expected an integer")):
        with pytest.raises(ConfigError, match=message):
            load_config(QUICKSTART, [override])


def test_layers_are_heras_layers_with_valid_options(tmp_path):
    def prepare_with(layers):
        from experiments.runner import prepare
        config = parse_config(quickstart_raw(model__layers=layers, training__epochs=0))
        return prepare(config, log=quiet, verbose=0)

    with pytest.raises(ConfigError, match=r"model\.layers\[1\]: 'ReLU' is not a heras layer.*Square/Poly"):
        prepare_with(["Flatten", "ReLU"])
    with pytest.raises(ConfigError, match=r"model\.layers\[1\] \(Dense\): invalid options"):
        prepare_with(["Flatten", {"Dense": {"unitz": 3}}])
    with pytest.raises(ConfigError, match="Flatten first"):
        prepare_with([{"Dense": {"units": 3}}, "Square", {"Dense": {"units": 10}}])
    model, plan, _ = prepare_with(["Flatten", {"class_name": "Dense", "config": {"units": 4}}, "Square",
                                   {"Dense": {"units": 10}}])
    assert [layer.__class__.__name__ for layer in model.layers] == ["Flatten", "Dense", "Square", "Dense"]
    assert plan.scheme == "bfv" and plan.depth == 1


# ----------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "quick"
    config = load_config(QUICKSTART, ["training.epochs=15"])
    return folder, run(config, output=folder, log=quiet, verbose=0)


def test_quickstart_run_writes_every_required_figure(quickstart_run):
    folder, results = quickstart_run
    stored = json.loads((folder / "results.json").read_text())
    assert set(REQUIRED_KEYS) <= set(stored)
    assert stored["exact"] is True and stored["mismatched_samples"] == 0
    assert stored["encrypted_samples"] == 360 and stored["agreement"] == 1.0
    # all 360 test images were encrypted, so encrypted accuracy is the discretised model's
    assert stored["encrypted_accuracy"] == stored["discretized_accuracy"] > 0.85
    assert stored["plaintext_accuracy"] > 0.85
    assert stored["plain_moduli"] and stored["poly_modulus_degree"] >= 4096 and stored["security_bits"] == 128
    assert stored["activations"] == 16 and stored["depth"] == 1
    assert stored["throughput_per_hour"] == pytest.approx(stored["batch_size"] / stored["latency_s"] * 3600)
    assert "| Digits-16 | digits | BFV | 16 |" in (folder / "results.md").read_text()
    saved = P.Parameters.from_yaml((folder / "parameters.yaml").read_text())
    assert list(saved.plain_moduli) == stored["plain_moduli"]
    assert (folder / "prepared" / "plan.json").is_file() and (folder / "prepared" / "model.keras").is_file()


def test_a_second_run_never_overwrites_the_first(quickstart_run):
    folder, _ = quickstart_run
    before = (folder / "results.json").read_bytes()
    second = claim_output_dir(folder)
    assert second == folder / "run-2" and (folder / "results.json").read_bytes() == before
    assert claim_output_dir(folder) == folder / "run-3"
    assert claim_output_dir(folder, overwrite=True) == folder


def test_a_saved_model_runs_without_training(quickstart_run, tmp_path):
    folder, first = quickstart_run
    raw = quickstart_raw()
    del raw["model"]["layers"]
    raw["model"]["load"] = str(folder / "prepared" / "model.keras")
    results = run(parse_config(raw), output=tmp_path, log=quiet, verbose=0)
    assert results["exact"] is True
    assert results["plaintext_accuracy"] == first["plaintext_accuracy"]
    assert results["encrypted_accuracy"] == first["encrypted_accuracy"]
    wrong_shape = parse_config({**raw, "dataset": {"name": "mnist", "data_dir": str(tmp_path)}})
    np.savez(tmp_path / "mnist.npz", **{k: np.zeros((2, 28, 28) if k[0] == "x" else 2, np.uint8)
                                          for k in ("x_train", "y_train", "x_test", "y_test")})
    with pytest.raises(ConfigError, match=r"expects inputs of shape \(8, 8, 1\)"):
        run(wrong_shape, output=tmp_path / "other", log=quiet, verbose=0)


def test_run_refuses_explicit_parameters_too_small_for_the_model(tmp_path):
    small = {"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": [36, 36, 37], "plain_moduli": [40961],
             "depth": 1}
    config = parse_config(quickstart_raw(encryption__parameters=small, training__epochs=1))
    with pytest.raises(ConfigError, match="proven bound.*Add or enlarge plain_moduli"):
        run(config, output=tmp_path, log=quiet, verbose=0)
    assert not (tmp_path / "results.json").exists()


def test_cli_run_and_params(tmp_path, capsys):
    assert main(["run", str(QUICKSTART), "--output", str(tmp_path / "out"), "--set", "training.epochs=5"]) == 0
    out = capsys.readouterr().out
    assert "| Digits-16 | digits | BFV |" in out and (tmp_path / "out" / "results.json").is_file()
    assert main(["params", str(QUICKSTART), "--set", "training.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "Run 'quickstart'" in out and "CRT prime" in out and "security table" in out and "trial run" in out
    assert main(["run", str(tmp_path / "nothing.yaml")]) == 2
    assert "sealion run: error: Config file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["params"])  # neither a config nor --scheme/--depth
    assert "give --scheme and --depth" in capsys.readouterr().err


@pytest.mark.skipif(not os.environ.get("SEALION_DATA"), reason="SEALION_DATA is not set: no MNIST here")
def test_mnist_config_runs_end_to_end_exactly(tmp_path):
    short = ["training.epochs=1", "evaluation.samples=256", "dataset.train_samples=20000"]
    with pytest.warns(UserWarning, match="keeps 85% of the initial weights after this run's 157 steps"):
        make_optimizer(load_config(CONFIGS / "mnist_dnn30.yaml", short).training, 157)  # the recipe averages
    no_average = "training.optimizer={class_name: AdamW, config: {learning_rate: 0.003, clipnorm: 1.0}}"
    config = load_config(CONFIGS / "mnist_dnn30.yaml", [*short, no_average])
    results = run(config, output=tmp_path, log=quiet, verbose=0)
    assert results["exact"] is True and results["encrypted_samples"] == 256
    assert results["plaintext_accuracy"] > 0.85 and results["encrypted_accuracy"] > 0.85
    assert results["poly_modulus_degree"] == P.Parameters.from_yaml(
        (tmp_path / "parameters.yaml").read_text()).poly_modulus_degree
    assert np.isfinite(results["latency_s"]) and results["peak_memory_mb"] > 0
