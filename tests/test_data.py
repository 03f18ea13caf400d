"""Data sets: the IDX reader, MNIST-like loading, scikit-learn sets, the registry and split_scale."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import nablanet.data as nd
from nablanet.data import real

# ---------------------------------------------------------------------------------------------------------------------
# helpers: write IDX files

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr, code=None, magic=b"\x00\x00"):
    arr = np.asarray(arr)
    code = _CODES[arr.dtype.type] if code is None else code
    header = magic + bytes([code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, data, gz=False):
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def fake_mnist(directory, n_train=20, n_test=8, gz=False, seed=0, spelling="-"):
    """A tiny MNIST directory: uint8 28x28 images and labels 0..9, returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write(directory / f"{prefix}-images{spelling}idx3-ubyte{suffix}", idx_bytes(images), gz)
        write(directory / f"{prefix}-labels{spelling}idx1-ubyte{suffix}", idx_bytes(labels), gz)
        out[prefix] = (images, labels)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# read_idx: round trips


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 2, 3)], ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64], ids=lambda d: d.__name__)
def test_read_idx_round_trip(tmp_path, dtype, shape, gz):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        arr = (rng.standard_normal(shape) * 1e3).astype(dtype)
    p = write(tmp_path / ("a.idx.gz" if gz else "a.idx"), idx_bytes(arr), gz)
    out = nd.read_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable
    out[...] = 0  # a private copy


def test_read_idx_detects_gzip_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    gz_named_plain = write(tmp_path / "x.gz", idx_bytes(arr), gz=False)
    plain_named_gz = write(tmp_path / "x.idx", idx_bytes(arr), gz=True)
    np.testing.assert_array_equal(nd.read_idx(gz_named_plain), arr)
    np.testing.assert_array_equal(nd.read_idx(str(plain_named_gz)), arr)


def test_read_idx_empty_dimension(tmp_path):
    arr = np.zeros((0, 3), dtype=np.float32)
    assert nd.read_idx(write(tmp_path / "e", idx_bytes(arr))).shape == (0, 3)


# ---------------------------------------------------------------------------------------------------------------------
# read_idx: malformed files


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_truncated_data(tmp_path, gz):
    data = idx_bytes(np.arange(10, dtype=np.int32))
    p = write(tmp_path / "t", data[:-3], gz)
    with pytest.raises(ValueError, match=r"truncated .*promise 40 data bytes but only 37") as exc:
        nd.read_idx(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_truncated_header(tmp_path, gz):
    data = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"truncated .*declares 3 dimensions"):
        nd.read_idx(write(tmp_path / "h", data[:9], gz))
    with pytest.raises(ValueError, match=r"not an IDX file: only 3 byte"):
        nd.read_idx(write(tmp_path / "h3", data[:3], gz))
    with pytest.raises(ValueError, match=r"not an IDX file: only 0 byte"):
        nd.read_idx(write(tmp_path / "h0", b"", gz))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_trailing_garbage(tmp_path, gz):
    data = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    p = write(tmp_path / "g", data + b"junk!", gz)
    with pytest.raises(ValueError, match=r"trailing garbage.*5 byte\(s\) after the 6 data bytes") as exc:
        nd.read_idx(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_bad_magic(tmp_path, gz):
    data = idx_bytes(np.arange(4, dtype=np.uint8), magic=b"\x01\x00")
    with pytest.raises(ValueError, match=r"bad magic number 0x01000801"):
        nd.read_idx(write(tmp_path / "m", data, gz))
    with pytest.raises(ValueError, match=r"bad magic"):
        nd.read_idx(write(tmp_path / "txt", b"hello world, not IDX", gz))


def test_read_idx_bad_type_code(tmp_path):
    p = write(tmp_path / "c", idx_bytes(np.arange(4, dtype=np.uint8), code=0x0A))
    with pytest.raises(ValueError, match=r"unknown IDX type code 0x0A; known codes: 0x08 \(uint8\)") as exc:
        nd.read_idx(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("ndim", [0, 200])
def test_read_idx_bad_ndim(tmp_path, ndim):
    data = b"\x00\x00\x08" + bytes([ndim]) + b"\x00\x00\x00\x01" * ndim + b"\x07"
    with pytest.raises(ValueError, match=rf"invalid number of dimensions {ndim}"):
        nd.read_idx(write(tmp_path / "n", data))


def test_read_idx_huge_dims_is_truncation_not_memory_error(tmp_path):
    # dims promise 2^32-1 x 2^32-1 doubles; the reader must not try to allocate that
    data = b"\x00\x00\x0e\x02" + b"\xff\xff\xff\xff" * 2 + b"\x00" * 16
    with pytest.raises(ValueError, match=r"truncated"):
        nd.read_idx(write(tmp_path / "big", data))


def _corruptions():
    payload = idx_bytes(np.random.default_rng(0).integers(0, 256, size=(50, 28, 28), dtype=np.uint8))
    good = gzip.compress(payload, mtime=0)
    body = bytearray(good)
    body[30:60] = b"\xff" * 30
    crc = bytearray(good)
    crc[-8] ^= 0xFF
    return {
        "cut-stream": good[: len(good) // 2],
        "no-trailer": good[:-8],
        "bad-body": bytes(body),
        "bad-crc": bytes(crc),
        "bad-method": good[:2] + b"\x07" + good[3:],
        "junk-after-member": good + b"not gzip at all",
    }


@pytest.mark.parametrize("kind", list(_corruptions()))
def test_read_idx_corrupt_gzip(tmp_path, kind):
    p = write(tmp_path / "bad.gz", _corruptions()[kind])
    with pytest.raises(ValueError, match=r"corrupt gzip stream") as exc:
        nd.read_idx(p)
    assert str(p) in str(exc.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        nd.read_idx(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------------------------------
# load_mnist on a fake directory


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("spelling", ["-", "."], ids=["dash", "dot"])
def test_load_mnist_fake_dir(tmp_path, gz, spelling):
    written = fake_mnist(tmp_path / "mnist", gz=gz, spelling=spelling)
    X, y = nd.load_mnist(tmp_path / "mnist")
    assert X.shape == (20, 784) and X.dtype == np.float32
    assert y.shape == (20,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    images, labels = written["train"]
    np.testing.assert_allclose(X, images.reshape(20, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    Xt, yt = nd.load_mnist(str(tmp_path / "mnist"), kind="test")
    assert Xt.shape == (8, 784) and yt.shape == (8,)
    np.testing.assert_array_equal(yt, written["t10k"][1])
    # the same files as Fashion-MNIST
    Xf, yf = nd.load_fashion_mnist(tmp_path / "mnist", kind="t10k")
    np.testing.assert_array_equal(Xf, Xt)


def test_load_mnist_missing_dir_names_places(tmp_path, monkeypatch):
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=r"no such directory") as exc:
        nd.load_mnist(missing)
    assert str(missing) in str(exc.value) and "path=" in str(exc.value)

    # defaults: $NABLANET_MNIST (an empty directory here), then ~/.nablanet/mnist (HOME moved to tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NABLANET_MNIST", str(empty))
    with pytest.raises(FileNotFoundError) as exc:
        nd.load_mnist()
    msg = str(exc.value)
    assert str(empty) in msg and "$NABLANET_MNIST" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte" in msg
    assert str(tmp_path / "home" / ".nablanet" / "mnist") in msg
    assert "put the four IDX files" in msg


def test_load_mnist_env_var_is_used(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "m", gz=True)
    monkeypatch.setenv("NABLANET_MNIST", str(tmp_path / "m"))
    assert nd.load_mnist()[0].shape == (20, 784)
    monkeypatch.setenv("NABLANET_FASHION_MNIST", str(tmp_path / "m"))
    assert nd.load_fashion_mnist(kind="test")[0].shape == (8, 784)


def test_load_fashion_mnist_missing_says_apt_get(tmp_path, monkeypatch):
    monkeypatch.delenv("NABLANET_FASHION_MNIST", raising=False)
    monkeypatch.setattr(real, "FASHION_MNIST_DEBIAN_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist") as exc:
        nd.load_fashion_mnist()
    assert str(tmp_path / "nowhere") in str(exc.value)


def test_load_mnist_missing_labels_only(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"train-labels-idx1-ubyte") as exc:
        nd.load_mnist(tmp_path)
    assert "train-images" not in str(exc.value).split("looked in:")[1].split("To get it")[0]


def test_load_mnist_count_mismatch(tmp_path):
    fake_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(19, dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"holds 20 images but .* holds 19 labels"):
        nd.load_mnist(tmp_path)


def test_load_mnist_bad_labels_and_images(tmp_path):
    fake_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.full(20, 10, dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"labels must lie in 0..9, found 10..10"):
        nd.load_mnist(tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((8, 784), dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(n, rows, cols\)"):
        nd.load_mnist(tmp_path, kind="test")
    with pytest.raises(ValueError, match=r"kind must be 'train' or 'test'"):
        nd.load_mnist(tmp_path, kind="validation")


def test_load_mnist_corrupt_file_propagates_value_error(tmp_path):
    fake_mnist(tmp_path, gz=True)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"corrupt gzip stream"):
        nd.load_mnist(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# scikit-learn sets and the registry


@pytest.mark.parametrize(
    "name, shape, task",
    [
        ("breast_cancer", (569, 30), "classification"),
        ("digits", (1797, 64), "classification"),
        ("iris", (150, 4), "classification"),
        ("wine", (178, 13), "classification"),
        ("diabetes", (442, 10), "regression"),
    ],
)
def test_load_sklearn(name, shape, task):
    X, y = nd.load_sklearn(name)
    assert X.shape == shape and X.dtype == np.float64
    assert y.shape == shape[:1]
    assert y.dtype == (np.int64 if task == "classification" else np.float64)
    assert nd.SKLEARN_DATASETS[name] == task


def test_load_sklearn_unknown():
    with pytest.raises(ValueError, match=r"unknown scikit-learn data set 'mnist'; choose from breast_cancer"):
        nd.load_sklearn("mnist")


FILE_FREE = {
    # name: (n_features, task, n_classes, default rows)
    "franke": (2, "regression", None, 1000),
    "runge": (1, "regression", None, 1000),
    "runge2d": (2, "regression", None, 1000),
    "polynomial": (1, "regression", None, 1000),
    "xor": (2, "classification", 2, 4),
    "and": (2, "classification", 2, 4),
    "or": (2, "classification", 2, 4),
    "breast_cancer": (30, "classification", 2, 569),
    "digits": (64, "classification", 10, 1797),
    "iris": (4, "classification", 3, 150),
    "wine": (13, "classification", 3, 178),
    "diabetes": (10, "regression", None, 442),
}


def test_registry_names():
    assert set(nd.DATASETS) == set(FILE_FREE) | {"mnist", "fashion_mnist"}
    for name, (loader, task, description) in nd.DATASETS.items():
        assert callable(loader) and task in ("regression", "classification")
        assert isinstance(description, str) and description and "\n" not in description, name


@pytest.mark.parametrize("name", list(FILE_FREE))
def test_load_dataset_file_free(name):
    d, task, n_classes, rows = FILE_FREE[name]
    ds = nd.load_dataset(name)
    assert isinstance(ds, nd.Dataset)
    assert ds.name == name and ds.task == task and ds.n_classes == n_classes
    assert ds.description == nd.DATASETS[name][2]
    assert ds.X.shape == (rows, d) and ds.X.dtype == np.float64
    assert ds.y.shape == (rows,)
    assert ds.X_test is None and ds.y_test is None
    if task == "classification":
        assert ds.y.dtype == np.int64 and set(np.unique(ds.y)) == set(range(n_classes))
    else:
        assert ds.y.dtype == np.float64
    assert name in repr(ds)
    # deterministic for a fixed seed
    again = nd.load_dataset(name)
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(again.y, ds.y)


@pytest.mark.parametrize("name", ["franke", "runge", "runge2d", "polynomial"])
def test_load_dataset_synthetic_options(name):
    a = nd.load_dataset(name, n=50, seed=3)
    b = nd.load_dataset(name, n=50, seed=3)
    c = nd.load_dataset(name, n=50, seed=4)
    assert a.X.shape[0] == 50
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    noisy = nd.load_dataset(name, n=50, seed=3, noise=0.1)
    np.testing.assert_array_equal(noisy.X, a.X)
    resid = noisy.y - a.y
    assert np.all(resid != 0) and 0.03 < resid.std() < 0.3


def test_load_dataset_sklearn_subset_and_noise():
    a, b = nd.load_dataset("iris", n=30, seed=1), nd.load_dataset("iris", n=30, seed=1)
    assert a.X.shape == (30, 4)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, nd.load_dataset("iris", n=30, seed=2).X)
    assert a.n_classes == 3  # a random subset, not the first (all class 0) rows
    clean, noisy = nd.load_dataset("diabetes"), nd.load_dataset("diabetes", noise=5.0, seed=0)
    np.testing.assert_array_equal(clean.X, noisy.X)
    assert 3.0 < (noisy.y - clean.y).std() < 7.0
    with pytest.raises(ValueError, match=r"n must be in 1..150"):
        nd.load_dataset("iris", n=151)


def test_load_dataset_bad_options():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar10'; available: franke, runge.*fashion_mnist"):
        nd.load_dataset("cifar10")
    with pytest.raises(ValueError, match=r"exactly 4 rows"):
        nd.load_dataset("xor", n=10)
    with pytest.raises(ValueError, match=r"noise"):
        nd.load_dataset("iris", noise=0.1)
    with pytest.raises(ValueError, match=r"noise"):
        nd.load_dataset("and", noise=0.1)
    assert nd.load_dataset("XOR").name == "xor"


def test_load_dataset_mnist_from_path(tmp_path):
    fake_mnist(tmp_path, n_train=20, n_test=8, gz=True)
    ds = nd.load_dataset("mnist", path=tmp_path)
    assert ds.task == "classification" and ds.n_classes == 10
    assert ds.X.shape == (20, 784) and ds.X_test.shape == (8, 784) and ds.y_test.shape == (8,)
    small = nd.load_dataset("mnist", n=5, path=tmp_path)
    assert small.X.shape == (5, 784) and small.n_classes == 10
    np.testing.assert_array_equal(small.X, ds.X[:5])
    assert small.X_test.shape == (8, 784)  # the test split stays whole
    fds = nd.load_dataset("fashion-mnist", n=3, path=tmp_path)
    assert fds.name == "fashion_mnist" and fds.X.shape == (3, 784)
    with pytest.raises(FileNotFoundError):
        nd.load_dataset("mnist", path=tmp_path / "none")


# ---------------------------------------------------------------------------------------------------------------------
# split_scale


def test_split_scale_fits_on_train_only():
    ds = nd.load_dataset("wine")
    Xtr, Xte, ytr, yte, scaler = nd.split_scale(ds, test_size=0.25, seed=0)
    assert Xtr.shape[0] + Xte.shape[0] == 178 and Xte.shape[0] == 45
    np.testing.assert_allclose(Xtr.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(Xtr.std(axis=0), 1.0, atol=1e-10)
    raw_train = scaler.inverse_transform(Xtr)
    np.testing.assert_allclose(scaler.mean_, raw_train.mean(axis=0))
    assert not np.allclose(scaler.mean_, ds.X.mean(axis=0), rtol=1e-6, atol=0)  # not the full-data mean
    # the test part got the training statistics, so it is not exactly standardised
    assert not np.allclose(Xte.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Xte, (scaler.inverse_transform(Xte) - scaler.mean_) / scaler.scale_)


def test_split_scale_stratified_and_deterministic():
    ds = nd.load_dataset("iris")
    Xtr, Xte, ytr, yte, _ = nd.split_scale(ds, test_size=0.2, seed=1)
    assert np.bincount(yte).tolist() == [10, 10, 10] and np.bincount(ytr).tolist() == [40, 40, 40]
    again = nd.split_scale(ds, test_size=0.2, seed=1)
    np.testing.assert_array_equal(again[1], Xte)
    other = nd.split_scale(ds, test_size=0.2, seed=2)
    assert not np.array_equal(other[1], Xte)


def test_split_scale_regression_and_scalers():
    ds = nd.load_dataset("franke", n=200, seed=0)
    Xtr, Xte, ytr, yte, scaler = nd.split_scale(ds, scale="minmax")
    assert Xtr.shape == (160, 2) and Xte.shape == (40, 2)
    np.testing.assert_allclose(Xtr.min(axis=0), 0.0)
    np.testing.assert_allclose(Xtr.max(axis=0), 1.0)
    assert type(scaler).__name__ == "MinMaxScaler"
    Xtr2, Xte2, ytr2, _, none = nd.split_scale(ds, scale=None)
    assert none is None
    np.testing.assert_array_equal(ytr2, ytr)  # targets never scaled; same split for the same seed
    assert set(map(tuple, Xtr2)) | set(map(tuple, Xte2)) == set(map(tuple, ds.X))
    *_, spelled = nd.split_scale(ds, scale="none")  # as the command line spells it
    assert spelled is None
    with pytest.raises(ValueError, match=r"scale must be 'standard', 'minmax' or None \('none'\), got 'robust'"):
        nd.split_scale(ds, scale="robust")


def test_split_scale_small_classes_fall_back_to_unstratified():
    ds = nd.Dataset("tiny", np.arange(10.0).reshape(5, 2), np.array([0, 0, 0, 0, 1]), "classification", 2, "tiny")
    Xtr, Xte, ytr, yte, _ = nd.split_scale(ds, test_size=0.4, seed=0)
    assert len(ytr) == 3 and len(yte) == 2


def test_split_scale_gates_are_not_split():
    ds = nd.load_dataset("xor")
    Xtr, Xte, ytr, yte, scaler = nd.split_scale(ds, scale=None)
    np.testing.assert_array_equal(Xtr, ds.X)
    np.testing.assert_array_equal(Xte, ds.X)
    np.testing.assert_array_equal(ytr, [0, 1, 1, 0])
    np.testing.assert_array_equal(yte, ytr)
    Xtr, Xte, *_ = nd.split_scale(ds)
    np.testing.assert_array_equal(Xtr, Xte)
    np.testing.assert_allclose(Xtr.mean(axis=0), 0.0)


def test_split_scale_uses_predefined_test_split(tmp_path):
    fake_mnist(tmp_path, n_train=20, n_test=8)
    ds = nd.load_dataset("mnist", path=tmp_path)
    Xtr, Xte, ytr, yte, scaler = nd.split_scale(ds, test_size=0.5, scale="minmax")
    assert Xtr.shape == (20, 784) and Xte.shape == (8, 784)
    np.testing.assert_array_equal(ytr, ds.y)
    np.testing.assert_array_equal(yte, ds.y_test)
    np.testing.assert_allclose(scaler.data_min_, ds.X.min(axis=0))  # fitted on the 20 training rows
    np.testing.assert_allclose(Xte, scaler.transform(ds.X_test))


# ---------------------------------------------------------------------------------------------------------------------
# the real Fashion-MNIST from the Debian package (skipped when it is not installed)

_FASHION_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def test_real_fashion_mnist_debian(monkeypatch):
    if not all((Path(nd.FASHION_MNIST_DEBIAN_DIR) / f).is_file() for f in _FASHION_FILES):
        pytest.skip(f"Fashion-MNIST not installed in {nd.FASHION_MNIST_DEBIAN_DIR} (apt-get install dataset-fashion-mnist)")
    monkeypatch.delenv("NABLANET_FASHION_MNIST", raising=False)
    X, y = nd.load_fashion_mnist()
    assert X.shape == (60000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y).tolist() == [6000] * 10
    Xt, yt = nd.load_fashion_mnist(kind="test")
    assert Xt.shape == (10000, 784) and np.bincount(yt).tolist() == [1000] * 10
    ds = nd.load_dataset("fashion_mnist", n=500)
    assert ds.X.shape == (500, 784) and ds.X_test.shape == (10000, 784) and ds.n_classes == 10


def test_design_matrix_columns_and_ols_recovers_the_polynomial():
    x = np.array([[2.0, 3.0], [-1.0, 0.5]])
    M = nd.design_matrix(x, 3)
    a, b = x[:, 0], x[:, 1]
    expect = np.column_stack([np.ones(2), a, b, a**2, a * b, b**2, a**3, a**2 * b, a * b**2, b**3])
    np.testing.assert_array_equal(M, expect)
    np.testing.assert_array_equal(nd.design_matrix(x, 3, intercept=False), expect[:, 1:])
    np.testing.assert_array_equal(nd.design_matrix([1.0, 2.0], 2), [[1, 1, 1], [1, 2, 4]])  # one feature, 1-d
    # OLS on the design matrix finds the coefficients the data were made with (no noise), as does Ridge -> 0
    X, y = nd.polynomial(n=50, coefs=(2.0, -1.0, 0.5, 0.25), seed=0)
    beta = np.linalg.pinv(nd.design_matrix(X, 3)) @ y
    np.testing.assert_allclose(beta, [2.0, -1.0, 0.5, 0.25], atol=1e-10)
    D = nd.design_matrix(X, 3)
    ridge = np.linalg.solve(D.T @ D + 1e-12 * np.eye(4), D.T @ y)
    np.testing.assert_allclose(ridge, beta, atol=1e-8)
    for bad, what in (((X, 0), "degree"), ((X, 2.5), "degree"), ((np.zeros((2, 40)), 4), "columns"),
                      ((np.zeros((0, 2)), 2), "rows")):
        with pytest.raises(ValueError, match=what):
            nd.design_matrix(*bad)
