"""Datasets: the bundled digits archive, and the search order before any download."""

import hashlib

import numpy as np
import pytest

import heras

DIGITS_SHA256 = "4c16053c1d14ec46c8b43eb115ef4c6270a90523ade980b99b6c570d1438d2f5"


def test_bundled_digits_are_the_documented_archive():
    assert hashlib.sha256(heras.datasets.digits.PATH.read_bytes()).hexdigest() == DIGITS_SHA256
    (x_train, y_train), (x_test, y_test) = heras.datasets.digits.load_data()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.dtype == np.uint8 and int(x_train.max()) == heras.datasets.digits.MAX_PIXEL
    assert np.bincount(y_test).tolist() == [36] * 10
    assert len(y_train) == 1437 and set(np.unique(y_train)) == set(range(10))


@pytest.fixture
def no_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SEALION_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_download_happens_only_when_no_folder_has_the_file(no_local_files, monkeypatch):
    import keras
    calls = []
    fake = ((np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)),) * 2
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: calls.append(1) or fake)
    assert heras.datasets.fashion_mnist.load_data()[0][0].shape == (1, 28, 28)
    assert calls == [1]
    arrays = {k: np.ones((3, 28, 28) if k.startswith("x") else (3,), np.uint8)
              for k in ("x_train", "y_train", "x_test", "y_test")}
    np.savez(no_local_files / "fashion_mnist.npz", **arrays)
    (x_train, _), _ = heras.datasets.fashion_mnist.load_data(data_dir=no_local_files)
    assert x_train.shape == (3, 28, 28) and calls == [1]  # found on disk: no second download


def test_missing_file_without_download_names_the_setting(no_local_files):
    with pytest.raises(FileNotFoundError, match="SEALION_DATA"):
        heras.datasets.mnist.load_data(download=False)


def test_archive_without_the_expected_arrays_is_rejected(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros(1))
    with pytest.raises(ValueError, match="lacks the arrays"):
        heras.datasets.mnist.load_data(data_dir=tmp_path)
