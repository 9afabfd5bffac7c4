"""What `sealion run` reports: figures that mean what they say, plots, one progress display."""

import json
import re
from pathlib import Path

import matplotlib.image
import pytest
import yaml

import primitives as P
from experiments import parse_config, run
from experiments.cli import main
from experiments.results import ResultCheckError, check_results

QUICKSTART = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "configs.md"


def documented_figures():
    """The keys the results.json table of docs/configs.md explains (first column)."""
    table = DOCS.read_text().split("### results.json figures", 1)[1]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row)}


def assert_documented(folder):
    stored = json.loads((folder / "results.json").read_text())
    assert set(stored) - documented_figures() == set()


def quickstart(output, **sections):
    raw = yaml.safe_load(QUICKSTART.read_text())
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    raw["output"] = {"dir": str(output)}
    return raw


def ckks_quickstart(output):
    return quickstart(output, training={"epochs": 3}, encryption={"scheme": "ckks", "precision_bits": 10})


@pytest.fixture(scope="module")
def bfv_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bfv")
    lines = []
    config = parse_config(quickstart(folder, training={"epochs": 4, "validation_split": 0.1}))
    results = run(config, log=lines.append, verbose=2)
    return folder, results, lines


def test_plots_are_valid_pngs_linked_from_results_md(bfv_run):
    folder, results, _ = bfv_run
    assert set(results["plots"].values()) == {"training_curves.png", "layer_times.png", "noise_budget.png"}
    report = (folder / "results.md").read_text()
    for title, name in results["plots"].items():
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        image = matplotlib.image.imread(folder / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0  # not a blank canvas
        assert f"![{title}]({name})" in report
    stored = json.loads((folder / "results.json").read_text())
    assert stored["plots"] == results["plots"]
    assert_documented(folder)
    history = stored["training_history"]
    assert len(history["loss"]) == len(history["val_loss"]) == len(history["accuracy"]) == 4


def test_noise_budget_per_layer_is_measured_and_the_model_is_conservative(bfv_run):
    _, results, _ = bfv_run
    budget = results["noise_budget_bits"]
    assert list(budget) == list(results["layer_times_s"])  # every layer's output was measured
    for row in budget.values():
        assert row["measured"] > 0
        assert row["measured"] >= row["estimated"] - 1  # SEAL floors to whole bits
    measured = [row["measured"] for row in budget.values()]
    assert measured == sorted(measured, reverse=True)  # layers only consume budget


def test_non_terminal_progress_has_one_line_per_step(bfv_run):
    _, results, lines = bfv_run
    steps = [line for line in lines if ": step " in line]
    assert len(steps) == len(results["layer_times_s"]) == 4  # one CRT prime, 4 layers
    for k, line in enumerate(steps, start=1):
        assert line.startswith(f"batch 1/1 forward: step {k}/4 (") and "\r" not in line and "\x1b" not in line


def test_ckks_error_is_measured_against_float64_and_within_the_proof(tmp_path, capsys):
    results = run(parse_config(ckks_quickstart(tmp_path)), log=lambda *_: None, verbose=0)
    assert 0 < results["max_abs_error"] < results["proven_error_bound"] < 2.0 ** -10
    # the float64 oracle is what CKKS computes: closer than Keras' float32 predict (about 10x
    # here; the ratio moves with the trained weights, so the test asks for 2x)
    assert results["max_abs_error"] < results["keras_float32_max_abs_diff"] / 2
    report = (tmp_path / "results.md").read_text()
    assert "**max_abs_error**" in report and "**proven_error_bound**" in report and "CHECK FAILED" not in report
    assert_documented(tmp_path)
    assert "noise_budget_bits" not in results and set(results["plots"].values()) == {
        "training_curves.png", "layer_times.png"}

    # a forged decryption, off by more than the bound: the run fails loudly, keeps everything
    first = (tmp_path / "results.json").read_bytes()
    honest_decrypt = P.decrypt

    def forged(context, tensor):
        return honest_decrypt(context, tensor) + 1e-3

    mp = pytest.MonkeyPatch()
    mp.setattr(P, "decrypt", forged)
    try:
        assert main(["run", str(_write(tmp_path / "forged.yaml", ckks_quickstart(tmp_path)))]) == 1
    finally:
        mp.undo()
    assert "exceeds the proven bound" in capsys.readouterr().err
    assert (tmp_path / "results.json").read_bytes() == first  # the honest run is untouched
    stored = json.loads((tmp_path / "run-2" / "results.json").read_text())  # the failed one is kept
    assert stored["max_abs_error"] > 9e-4 > stored["proven_error_bound"]
    assert "CHECK FAILED" in (tmp_path / "run-2" / "results.md").read_text()


def test_result_checks():
    assert check_results({"exact": True, "max_abs_error": None}) == []
    assert check_results({"max_abs_error": 1e-9, "proven_error_bound": 1e-6}) == []
    assert "exceeds the proven bound" in check_results({"max_abs_error": 2e-6, "proven_error_bound": 1e-6})[0]
    assert "exceeds" in check_results({"max_abs_error": float("nan"), "proven_error_bound": 1e-6})[0]
    assert "3 encrypted predictions differ" in check_results({"exact": False, "mismatched_samples": 3})[0]
    assert issubclass(ResultCheckError, P.SealionError)


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sealion_table_plot_is_a_png(tmp_path):
    from benchmarks.sealion_table import plot
    rows = [{"model": "DNN-30", "dataset": "mnist", "scheme": "bfv", "throughput_per_hour": 2e7,
             "encrypted_accuracy": 0.975},
            {"model": "DNN-30", "dataset": "mnist", "scheme": "ckks", "throughput_per_hour": 5e6,
             "encrypted_accuracy": 0.97},
            {"config": "mnist_cnn16.yaml", "failed": "signal 9"}]
    path = plot(rows, tmp_path / "sealion_table.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE) and matplotlib.image.imread(path).shape[0] > 300
