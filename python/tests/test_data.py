import gzip

import numpy as np
import pytest

from conftest import write_idx
from mlprt_tools import data


def test_reads_tiny_idx_files(tiny_dataset):
    images, labels = data.load_split("test", tiny_dataset["dir"])
    assert images.dtype == np.float32 and images.shape == (3, 784)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, tiny_dataset["labels"])
    expected = tiny_dataset["pixels"].reshape(3, 784).astype(np.float64) / 255.0
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-7)
    assert images.flags["C_CONTIGUOUS"]


def test_limit_keeps_the_first_images(tiny_dataset):
    images, labels = data.load_split("test", tiny_dataset["dir"], limit=2)
    assert images.shape == (2, 784)
    np.testing.assert_array_equal(labels, tiny_dataset["labels"][:2])


def test_preprocess_is_applied_as_saved(tiny_dataset):
    custom = dict(data.DEFAULT_PREPROCESS, scale=2.0, offset=-1.0)
    images, _ = data.load_split("test", tiny_dataset["dir"], preprocess=custom)
    expected = tiny_dataset["pixels"].reshape(3, 784).astype(np.float32) * 2.0 - 1.0
    np.testing.assert_array_equal(images, expected)


def test_bad_magic_names_the_file(tiny_dataset):
    write_idx(tiny_dataset["images_path"], 0x00000802, [3, 28, 28], bytes(3 * 784))
    with pytest.raises(data.DatasetError, match=r"t10k-images-idx3-ubyte\.gz: magic number 0x00000802"):
        data.load_split("test", tiny_dataset["dir"])


def test_truncated_file_is_refused(tiny_dataset):
    write_idx(tiny_dataset["images_path"], data.IMAGE_MAGIC, [3, 28, 28], bytes(3 * 784 - 5))
    with pytest.raises(data.DatasetError, match="truncated"):
        data.load_split("test", tiny_dataset["dir"])


def test_truncated_header_is_refused(tiny_dataset):
    with gzip.open(tiny_dataset["labels_path"], "wb") as f:
        f.write(b"\x00\x00")
    with pytest.raises(data.DatasetError, match="too short"):
        data.load_split("test", tiny_dataset["dir"])


def test_not_gzip_is_refused(tiny_dataset):
    write_idx(tiny_dataset["labels_path"], data.LABEL_MAGIC, [3], bytes(3), compress=False)
    with pytest.raises(data.DatasetError, match="gzip"):
        data.load_split("test", tiny_dataset["dir"])


def test_missing_file_tells_how_to_install(tmp_path):
    with pytest.raises(data.DatasetError, match="apt-get install dataset-fashion-mnist") as info:
        data.load_split("train", str(tmp_path))
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_image_label_count_mismatch(tiny_dataset):
    write_idx(tiny_dataset["labels_path"], data.LABEL_MAGIC, [2], bytes(2))
    with pytest.raises(data.DatasetError, match="3 images but .* 2 labels"):
        data.load_split("test", tiny_dataset["dir"])


def test_label_out_of_range(tiny_dataset):
    write_idx(tiny_dataset["labels_path"], data.LABEL_MAGIC, [3], bytes([1, 10, 2]))
    with pytest.raises(data.DatasetError, match="label 10 out of range"):
        data.load_split("test", tiny_dataset["dir"])


def test_wrong_image_size(tiny_dataset):
    write_idx(tiny_dataset["images_path"], data.IMAGE_MAGIC, [3, 27, 28], bytes(3 * 27 * 28))
    with pytest.raises(data.DatasetError, match=r"\[27, 28\]"):
        data.load_split("test", tiny_dataset["dir"])


def test_export_npy_cli(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert data.main(["--export-npy", str(out), "--data-dir", tiny_dataset["dir"]]) == 0
    images = np.load(out / "test_images.npy")
    labels = np.load(out / "test_labels.npy")
    assert images.dtype == np.float32 and images.shape == (3, 784)
    assert labels.dtype == np.int64 and labels.tolist() == tiny_dataset["labels"].tolist()
    assert "test_images.npy" in capsys.readouterr().out


def test_export_npy_cli_error_exit(tmp_path, capsys):
    assert data.main(["--export-npy", str(tmp_path / "o"), "--data-dir", str(tmp_path)]) == 1
    assert "mlprt_tools.data: error:" in capsys.readouterr().err
    assert not (tmp_path / "o" / "test_images.npy").exists()


def test_real_test_split():
    """The installed dataset: 10000 test images, 1000 of each class, pixels in [0, 1]."""
    images, labels = data.load_split("test")
    assert images.shape == (10000, 784)
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 1000))
