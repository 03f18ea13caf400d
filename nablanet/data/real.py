"""Real data sets that need no network: IDX files (MNIST, Fashion-MNIST) and scikit-learn's bundled sets.

Nothing here downloads anything. MNIST-like data are read from IDX files already
on disk; Fashion-MNIST is found where the Debian package ``dataset-fashion-mnist``
installs it (``/usr/share/datasets/fashion-mnist``). The scikit-learn sets are the
ones shipped inside the scikit-learn wheel (breast_cancer, digits, iris, wine,
diabetes).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..validate import FileFormatError, MissingFileError

__all__ = [
    "FASHION_MNIST_DEBIAN_DIR",
    "MNIST_DEFAULT_DIR",
    "SKLEARN_DATASETS",
    "load_fashion_mnist",
    "load_mnist",
    "load_sklearn",
    "read_idx",
]

#: Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files
#: (``dpkg -L dataset-fashion-mnist``).
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

#: Default directory searched for the four MNIST IDX files (after ``$NABLANET_MNIST``).
MNIST_DEFAULT_DIR = "~/.nablanet/mnist"

# IDX type code -> big-endian dtype of the data section.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MAX_NDIM = 32  # the format allows up to 255, but nothing real comes anywhere near this
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class _CorruptGzip(Exception):
    """Internal: a decompression error, turned into a ValueError naming the file."""


def _read_exact(stream, n, gz):
    """Read up to ``n`` bytes in bounded chunks (a forged header cannot force a huge allocation)."""
    parts, got = [], 0
    while got < n:
        try:
            chunk = stream.read(min(_CHUNK, n - got))
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            if gz:
                raise _CorruptGzip(f"{type(exc).__name__}: {exc}") from exc
            raise
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _count_rest(stream, gz):
    """Number of bytes left in ``stream`` (read in chunks)."""
    total = 0
    while True:
        chunk = _read_exact(stream, _CHUNK, gz)
        if not chunk:
            return total
        total += len(chunk)


def _parse_idx(stream, name, gz):
    what = "gzipped IDX file" if gz else "IDX file"
    header = _read_exact(stream, 4, gz)
    if len(header) < 4:
        raise FileFormatError(name, f"not an IDX file: only {len(header)} byte(s), an IDX header needs at least 4")
    if header[0] != 0 or header[1] != 0:
        raise FileFormatError(name, f"not an IDX file: bad magic number 0x{header[:4].hex()} (the first two bytes must be zero)")
    code, ndim = header[2], header[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in _IDX_TYPES.items())
        raise FileFormatError(name, f"unknown IDX type code 0x{code:02X}; known codes: {known}")
    if ndim == 0 or ndim > _MAX_NDIM:
        raise FileFormatError(name, f"invalid number of dimensions {ndim} in the IDX header (expected 1..{_MAX_NDIM})")
    raw_dims = _read_exact(stream, 4 * ndim, gz)
    if len(raw_dims) < 4 * ndim:
        raise FileFormatError(
            name, f"truncated {what}: the header declares {ndim} dimensions ({4 * ndim} bytes) "
            f"but only {len(raw_dims)} byte(s) of them are present"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = _IDX_TYPES[code]
    count = 1
    for d in dims:
        count *= d
    nbytes = count * dtype.itemsize
    data = _read_exact(stream, nbytes, gz)
    if len(data) < nbytes:
        raise FileFormatError(
            name, f"truncated {what}: dims {dims} of {dtype.name} promise {nbytes} data bytes but only {len(data)} are present"
        )
    extra = _count_rest(stream, gz)
    if extra:
        raise FileFormatError(
            name, f"trailing garbage in {what}: {extra} byte(s) after the {nbytes} data bytes "
            f"that dims {dims} of {dtype.name} promise"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def read_idx(path):
    """Read one IDX file (the MNIST format), gzipped or not.

    Layout: two zero bytes, a type code byte (``0x08`` uint8, ``0x09`` int8,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), a byte
    ``ndim``, ``ndim`` big-endian uint32 dimensions, then the data, big-endian,
    in C order. Gzip compression is recognised by its magic bytes ``1f 8b``,
    whatever the file is called.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    numpy.ndarray
        A fresh, writable array of the file's dtype (in native byte order) and
        shape.

    Raises
    ------
    ValueError
        With the file name and what is wrong: bad magic number, unknown type
        code, zero or absurd ``ndim``, truncated header or data (fewer bytes
        than the dimensions promise), trailing bytes after the data, or a
        corrupt gzip stream.
    FileNotFoundError, IsADirectoryError, PermissionError
        When the file cannot be opened at all.

    Examples
    --------
    >>> X = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> X.shape, X.dtype
    ((10000, 28, 28), dtype('uint8'))
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise FileFormatError(name, "is a folder, not an IDX file")
    if not os.path.exists(name):
        raise MissingFileError(f"no IDX file {name!r}")
    try:
        raw = open(name, "rb")
    except OSError as e:
        raise FileFormatError(name, f"cannot be read ({e.strerror or e})") from None
    with raw:
        gz = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        try:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _parse_idx(stream, name, gz=True)
            return _parse_idx(raw, name, gz=False)
        except _CorruptGzip as exc:
            raise FileFormatError(name, f"corrupt gzip stream ({exc})") from exc.__cause__


# ---------------------------------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST

_KINDS = {"train": "train", "test": "t10k", "t10k": "t10k"}


def _candidates(prefix, part, idx):
    """File names tried for one part, e.g. ``train-images-idx3-ubyte[.gz]`` and ``train-images.idx3-ubyte[.gz]``."""
    names = []
    for sep in ("-", "."):
        base = f"{prefix}-{part}{sep}{idx}-ubyte"
        names += [base, base + ".gz"]
    return names


def _default_dirs(fashion):
    """``(directory, where it came from)`` pairs searched when no ``path`` is given."""
    env = "NABLANET_FASHION_MNIST" if fashion else "NABLANET_MNIST"
    dirs = []
    if os.environ.get(env):
        dirs.append((os.environ[env], f"${env}"))
    dirs.append((FASHION_MNIST_DEBIAN_DIR, "Debian dataset-fashion-mnist") if fashion else (MNIST_DEFAULT_DIR, "default"))
    return dirs


def _find(directory, names):
    for n in names:
        p = directory / n
        if p.is_file():
            return p
    return None


def load_mnist(path=None, kind="train", fashion=False):
    """Load MNIST (or Fashion-MNIST) from IDX files on disk; never downloads.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory holding the files ``{train,t10k}-images-idx3-ubyte`` and
        ``{train,t10k}-labels-idx1-ubyte``, each optionally gzipped (``.gz``);
        the ``-images.idx3-ubyte`` spelling is accepted too. When omitted, the
        directory named by ``$NABLANET_MNIST`` (``$NABLANET_FASHION_MNIST``
        when ``fashion``) is searched first, then ``~/.nablanet/mnist``
        (for Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``, where
        ``apt-get install dataset-fashion-mnist`` puts it).
    kind : {"train", "test"}
        The 60000-row training part or the 10000-row test part (``"t10k"``
        is accepted for ``"test"``).
    fashion : bool
        Look for Fashion-MNIST instead of MNIST (changes only the default
        directories and the messages; the file format is the same).

    Returns
    -------
    X : numpy.ndarray of float32, shape (n, 784)
        Pixel values scaled to [0, 1], one flattened 28x28 image per row
        (other image sizes are flattened the same way).
    y : numpy.ndarray of int64, shape (n,)
        Labels 0..9.

    Raises
    ------
    FileNotFoundError
        When no searched directory holds both files; the message lists every
        directory and file name tried and how to get the data.
    ValueError
        For a bad ``kind``, unreadable IDX files (see :func:`read_idx`),
        images that are not a uint8 (n, h, w) array, labels that are not a
        1-d integer array in 0..9, or image and label counts that differ.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    prefix = _KINDS[kind]
    label = "Fashion-MNIST" if fashion else "MNIST"
    dirs = [(os.fspath(path), "path=")] if path is not None else _default_dirs(fashion)
    img_names = _candidates(prefix, "images", "idx3")
    lab_names = _candidates(prefix, "labels", "idx1")

    looked = []
    for d, origin in dirs:
        directory = Path(d).expanduser()
        if not directory.is_dir():
            looked.append(f"{directory} ({origin}): no such directory")
            continue
        img, lab = _find(directory, img_names), _find(directory, lab_names)
        if img is not None and lab is not None:
            return _load_pair(img, lab)
        missing = [", ".join(names) for names, found in ((img_names, img), (lab_names, lab)) if found is None]
        looked.append(f"{directory} ({origin}): none of {' / '.join(missing)}")

    if fashion:
        how = (
            "install it with `apt-get install dataset-fashion-mnist` (files go to "
            f"{FASHION_MNIST_DEBIAN_DIR}), or put the four IDX files in a directory and pass path= "
            "or set $NABLANET_FASHION_MNIST"
        )
    else:
        how = (
            f"put the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            f"t10k-labels-idx1-ubyte, gzipped or not) in {MNIST_DEFAULT_DIR} or another directory and pass "
            "path= or set $NABLANET_MNIST"
        )
    # ';' and '.' end the entries, so the message reads as sentences on one line too (the command line's form)
    raise FileNotFoundError(f"{label} ({kind}) not found; looked in:\n  " + ";\n  ".join(looked) + f".\nTo get it: {how}.")


def _load_pair(img_path, lab_path):
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise FileFormatError(img_path, f"expected uint8 images of shape (n, rows, cols), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise FileFormatError(lab_path, f"expected a 1-d integer label array, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise FileFormatError(img_path, f"holds {len(images)} images but {lab_path} holds {len(labels)} labels")
    if len(images) == 0 or images.shape[1] * images.shape[2] == 0:
        raise FileFormatError(img_path, f"holds no images to learn from (shape {images.shape})")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise FileFormatError(lab_path, f"labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    X = images.reshape(len(images), -1).astype(np.float32)
    X /= np.float32(255.0)
    return X, labels.astype(np.int64)


def load_fashion_mnist(path=None, kind="train"):
    """Load Fashion-MNIST from IDX files on disk; never downloads.

    Same as ``load_mnist(path, kind, fashion=True)``: without ``path`` it looks
    in ``$NABLANET_FASHION_MNIST`` and then in
    ``/usr/share/datasets/fashion-mnist``, where the Debian package
    ``dataset-fashion-mnist`` installs the four gzipped files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory with the four IDX files.
    kind : {"train", "test"}
        60000 training rows or 10000 test rows.

    Returns
    -------
    X : numpy.ndarray of float32, shape (n, 784)
        Pixels in [0, 1].
    y : numpy.ndarray of int64, shape (n,)
        Labels 0..9 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal,
        Shirt, Sneaker, Bag, Ankle boot).
    """
    return load_mnist(path, kind=kind, fashion=True)


# ---------------------------------------------------------------------------------------------------------------------
# scikit-learn's bundled data sets

#: The scikit-learn data sets that ship inside the package: name -> task.
SKLEARN_DATASETS = {
    "breast_cancer": "classification",
    "digits": "classification",
    "iris": "classification",
    "wine": "classification",
    "diabetes": "regression",
}


def load_sklearn(name):
    """Load one of scikit-learn's bundled data sets (no download).

    Parameters
    ----------
    name : {"breast_cancer", "digits", "iris", "wine", "diabetes"}
        The data set.

    Returns
    -------
    X : numpy.ndarray of float64, shape (n, d)
        Features (diabetes features come already mean-centred and scaled by scikit-learn).
    y : numpy.ndarray
        int64 class labels 0..k-1 for the classification sets, float64
        targets for ``"diabetes"``.

    Raises
    ------
    ValueError
        For a name not in the list above.
    """
    if name not in SKLEARN_DATASETS:
        raise ValueError(f"unknown scikit-learn data set {name!r}; choose from {', '.join(SKLEARN_DATASETS)}")
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    y_dtype = np.float64 if SKLEARN_DATASETS[name] == "regression" else np.int64
    return np.ascontiguousarray(X, dtype=np.float64), np.asarray(y, dtype=y_dtype)
