"""benchmarks/seeds.py: the recipes-across-seeds table and its verdict against the paper."""

import json
from pathlib import Path

from benchmarks import seeds
from experiments import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_quick_mode_trains_each_seed_and_writes_the_table(tmp_path):
    assert seeds.main(["--quick", "--output", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "seeds.json").read_text())["rows"]
    assert [row["seed"] for row in rows] == [0, 1]
    for row in rows:  # the bundled digits: 95.8% and 97.5% measured
        assert row["scheme"] == "bfv" and row["primes"] >= 1 and row["paper"] is None and row["meets"] is None
        assert row["plaintext"] > 85 and row["served"] > 85
    assert rows[0]["served"] != rows[1]["served"] or rows[0]["plaintext"] != rows[1]["plaintext"]  # seeds differ
    markdown = (tmp_path / "seeds.md").read_text()
    assert "| quickstart | 0, 1 |" in markdown


def test_mnist_rows_are_held_to_the_paper_and_fashion_rows_to_nothing():
    assert seeds.paper_accuracy(load_config(CONFIGS / "mnist_dnn30.yaml")) == 97.40
    assert seeds.paper_accuracy(load_config(CONFIGS / "mnist_cnn16_fast.yaml")) == 98.96  # its base model's
    assert seeds.paper_accuracy(load_config(CONFIGS / "mnist_cnn16_l0.yaml")) == 98.91
    assert seeds.paper_accuracy(load_config(CONFIGS / "fashion_cnn16.yaml")) is None


def test_a_seed_below_the_paper_fails_the_run(tmp_path, monkeypatch):
    def below(config, log):
        return {"config": config.name, "model": "DNN-30", "dataset": "mnist", "scheme": "bfv",
                "seed": config.training.seed, "primes": 1, "plaintext": 97.0, "served": 97.39,
                "paper": 97.40, "meets": False, "train_s": 1.0}
    monkeypatch.setattr(seeds, "measure", below)
    assert seeds.main(["--configs", "mnist_dnn30", "--seeds", "3", "--output", str(tmp_path)]) == 1
    assert "| mnist_dnn30 | 3 | 97.39 / 97.39 / 97.39 | 97.4 | NO |" in (tmp_path / "seeds.md").read_text()
