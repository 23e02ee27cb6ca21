"""Load the assignment's images, split them and preprocess them.

Two datasets, one interface (``load_dataset``):

- **CIFAR-10** (``cifar10``): 32x32 colour images in 10 classes, downloaded by
  ``./get_datasets.sh`` into ``datasets/cifar-10-batches-py`` (or wherever the
  environment variable ``CIFAR10_DIR`` points).
- **Fashion-MNIST** (``fashion-mnist``): 28x28 greyscale images of clothes in 10
  classes. Its 10,000-image test split ships with the kit in ``datasets/fashion-mnist``
  so everything runs offline.

``CS231N_DATASET`` chooses: ``auto`` (the default) takes CIFAR-10 when it has been
downloaded and the bundled Fashion-MNIST otherwise; ``cifar10`` or ``fashion-mnist``
insist on one.

The CIFAR-10 batches are Python 2 pickles. Unpickling can run arbitrary code, so they
are read by a small interpreter (``cs231n/_pickle.py``) that builds uint8 and integer
arrays from bytes of checked length and refuses everything else with a message naming
the file. The file checks live in ``cs231n/_datasets.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import _datasets
from ._pickle import UnsafePickleError as UnsafePickleError  # what the loaders raise

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = REPO_ROOT / "datasets"
DATASET_NAMES = ("auto", "cifar10", "fashion-mnist")

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
# sha256 of the bundled files, as listed in datasets/fashion-mnist/README.md
FASHION_MNIST_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",  # noqa: E501
}
_GET_CIFAR = "run ./get_datasets.sh to download CIFAR-10, or set CIFAR10_DIR to its folder"


@dataclass
class Dataset:
    """One dataset's raw images and labels, pixel values 0..255.

    Attributes
    ----------
    name : 'cifar10' or 'fashion-mnist'.
    class_names : the C class names; label ``k`` means ``class_names[k]``.
    image_shape : (H, W, C): (32, 32, 3) for CIFAR-10, (28, 28, 1) for Fashion-MNIST.
    X_train : (N_train, H, W, C) images.
    y_train : (N_train,) int64 labels in [0, C).
    X_test : (N_test, H, W, C) images.
    y_test : (N_test,) int64 labels.
    reason : why this dataset was picked (printed by ``load_dataset``).
    """

    name: str
    class_names: list[str]
    image_shape: tuple[int, int, int]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    reason: str

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, image_shape={self.image_shape}, "
            f"X_train={self.X_train.shape} {self.X_train.dtype}, "
            f"X_test={self.X_test.shape} {self.X_test.dtype}, classes={len(self.class_names)})"
        )


# --------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------


def _rows_to_images(data: np.ndarray, out: np.ndarray) -> None:
    # a row is 1024 red, 1024 green, 1024 blue values, each plane a row-major 32x32
    out[...] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def load_CIFAR_batch(
    filename: str | os.PathLike, dtype: npt.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file (``data_batch_1`` ... ``test_batch``).

    Parameters
    ----------
    filename : path of the batch file.
    dtype : dtype of the returned images; np.float32 halves the memory (the uint8
        pixels are converted straight to it, with no float64 copy in between).

    Returns
    -------
    X : (N, 32, 32, 3) images in ``dtype``, values 0..255, channels R, G, B.
    y : (N,) int64 labels in [0, 10).

    Raises
    ------
    UnsafePickleError : (a ValueError) the file is empty, truncated or corrupt, or holds
        anything a CIFAR-10 batch does not: code, other globals, arrays that are not
        uint8 pixels or integer labels, or data of the wrong length. Nothing of it is
        run, and numpy is left as it was.
    OSError : the file cannot be opened.
    """
    data, y = _datasets.read_cifar_batch(filename)
    X = np.empty((data.shape[0], 32, 32, 3), dtype=dtype)
    _rows_to_images(data, X)
    return X, y


def load_CIFAR10(
    ROOT: str | os.PathLike, dtype: npt.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 from a ``cifar-10-batches-py`` folder.

    Parameters
    ----------
    ROOT : the folder holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``.
    dtype : dtype of the images (see ``load_CIFAR_batch``).

    Returns
    -------
    Xtr : (N_train, 32, 32, 3) training images (50000 in the real dataset).
    ytr : (N_train,) int64 labels.
    Xte : (N_test, 32, 32, 3) test images (10000 in the real dataset).
    yte : (N_test,) int64 labels.

    Raises
    ------
    FileNotFoundError : the folder is missing, is a file, or lacks batch files (the
        message says which, and what to do).
    UnsafePickleError : a batch file is not what a CIFAR-10 batch holds (see
        ``load_CIFAR_batch``).
    """
    root = Path(ROOT)
    problem = _datasets.cifar_folder_problem(root, DATASETS_DIR)
    if problem:
        if not root.is_dir():
            problem += f" {_GET_CIFAR[0].upper()}{_GET_CIFAR[1:]}."
        raise FileNotFoundError(problem)
    names = [f"data_batch_{b}" for b in range(1, 6)]
    batches = [_datasets.read_cifar_batch(root / name) for name in names]  # raw uint8: 150 MB
    Xtr = np.empty((sum(len(y) for _, y in batches), 32, 32, 3), dtype=dtype)
    start = 0
    for data, y in batches:
        _rows_to_images(data, Xtr[start : start + len(y)])
        start += len(y)
    ytr = np.concatenate([y for _, y in batches])
    Xte, yte = load_CIFAR_batch(root / "test_batch", dtype=dtype)
    return Xtr, ytr, Xte, yte


# --------------------------------------------------------------------------------------
# Fashion-MNIST: IDX files, gzipped
# --------------------------------------------------------------------------------------


def load_fashion_mnist(
    folder: str | os.PathLike | None = None, dtype: npt.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the bundled Fashion-MNIST test split, divided into train and test parts.

    Only the official 10,000-image test split is bundled. Each class's images are
    divided in file order: the first 80% go to the training part, the last 20% to the
    test part (8000 and 2000 images, 800 and 200 per class). No randomness involved.

    Parameters
    ----------
    folder : folder with ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
        (default ``datasets/fashion-mnist``). Their sha256 checksums are verified.
    dtype : dtype of the images.

    Returns
    -------
    X_train : (8000, 28, 28, 1) images, values 0..255.
    y_train : (8000,) int64 labels in [0, 10).
    X_test : (2000, 28, 28, 1) images.
    y_test : (2000,) int64 labels.
    """
    folder = DATASETS_DIR / "fashion-mnist" if folder is None else Path(folder)
    paths = {name: folder / name for name in FASHION_MNIST_SHA256}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; it ships with the kit: restore it with "
                "`git checkout -- datasets/`."
            )
    images, labels = (
        _datasets.read_idx(paths[name], FASHION_MNIST_SHA256[name])
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    )
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{folder}: expected images (N, H, W) and N labels; got {images.shape} and "
            f"{labels.shape}"
        )
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        is_test[members[len(members) - len(members) // 5 :]] = True
    # a channel axis makes them (N, 28, 28, 1), shaped like CIFAR-10's (N, 32, 32, 3)
    X_train, X_test = (images[part, :, :, None].astype(dtype) for part in (~is_test, is_test))
    return X_train, labels[~is_test].astype(np.int64), X_test, labels[is_test].astype(np.int64)


# --------------------------------------------------------------------------------------
# The dataset switch
# --------------------------------------------------------------------------------------


def load_dataset(
    name: str | None = None, dtype: npt.DTypeLike = np.float64, verbose: bool = True
) -> Dataset:
    """Load CIFAR-10 or the bundled Fashion-MNIST, as ``name`` or ``CS231N_DATASET`` says.

    Parameters
    ----------
    name : 'auto', 'cifar10' or 'fashion-mnist'; None reads the environment variable
        ``CS231N_DATASET`` (default 'auto'). 'auto' takes CIFAR-10 when its folder
        exists, else Fashion-MNIST. The CIFAR-10 folder is ``CIFAR10_DIR`` when that
        is set, else ``datasets/cifar-10-batches-py`` in the repository.
    dtype : dtype of the images (pixel values stay 0..255).
    verbose : print which dataset was picked and why, and its shapes.

    Returns
    -------
    Dataset with X_train (N, H, W, C), y_train (N,), X_test, y_test, class_names,
    image_shape and the reason for the choice.

    Raises
    ------
    ValueError : unknown dataset name.
    FileNotFoundError : CIFAR-10 was asked for (by name, or by setting ``CIFAR10_DIR``)
        and is not there.
    """
    key, reason, cifar_dir = _datasets.choose_dataset(name, REPO_ROOT, DATASETS_DIR, DATASET_NAMES)

    if key == "cifar10":
        X_train, y_train, X_test, y_test = load_CIFAR10(cifar_dir, dtype=dtype)
        ds = Dataset(
            "cifar10", _datasets.cifar10_class_names(cifar_dir, CIFAR10_CLASSES), (32, 32, 3),
            X_train, y_train, X_test, y_test, reason,
        )  # fmt: skip
    else:
        X_train, y_train, X_test, y_test = load_fashion_mnist(dtype=dtype)
        ds = Dataset(
            "fashion-mnist", list(FASHION_MNIST_CLASSES), (28, 28, 1),
            X_train, y_train, X_test, y_test, reason,
        )  # fmt: skip
    if verbose:
        print(f"Dataset: {ds.name}, because {ds.reason}.")
        if ds.name == "fashion-mnist":
            print(
                f"Only Fashion-MNIST's 10,000-image test split is bundled: each class is split "
                f"in file order, 80% for training ({len(ds.y_train)}) and 20% for testing "
                f"({len(ds.y_test)})."
            )
        print(f"Training data shape: {ds.X_train.shape}, labels: {ds.y_train.shape}")
        print(f"Test data shape:     {ds.X_test.shape}, labels: {ds.y_test.shape}")
    return ds


# --------------------------------------------------------------------------------------
# Splits and preprocessing (the cs231n notebook's data step)
# --------------------------------------------------------------------------------------


def make_splits(
    ds: Dataset,
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    num_dev: int = 500,
    verbose: bool = True,
) -> dict[str, np.ndarray]:
    """Split a dataset into train / validation / test / dev sets, as cs231n does.

    Training images are the first ``num_training`` of the raw training set, the
    validation images the ``num_validation`` after them, test images the first
    ``num_test`` of the raw test set, and the dev set a random subset of the training
    images (drawn with ``np.random.default_rng(0)``) for quick experiments.

    When the dataset has fewer images than asked for, the sizes shrink in proportion
    (and a line says so): 8000 raw training images give 7840 train / 160 val / 80 dev.

    Parameters
    ----------
    ds : a Dataset from ``load_dataset``.
    num_training, num_validation, num_test, num_dev : requested sizes (>= 0).
    verbose : print the sizes (and why they shrank, if they did).

    Returns
    -------
    dict with X_train (n_train, H, W, C), y_train (n_train,), and likewise X_val,
    y_val, X_test, y_test, X_dev, y_dev. The train, val and test arrays are views of
    ``ds``'s arrays, not copies.
    """
    sizes = {"num_training": num_training, "num_validation": num_validation}
    sizes |= {"num_test": num_test, "num_dev": num_dev}
    for arg, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"{arg} should be an int >= 0; got {n!r}")
    if num_training == 0:
        raise ValueError("num_training should be at least 1")
    n_raw, n_raw_test = len(ds.y_train), len(ds.y_test)
    notes = []

    wanted = num_training + num_validation
    if wanted > n_raw:
        if n_raw < 1 + (num_validation > 0):
            raise ValueError(
                f"{ds.name} has {n_raw} training images: too few for a training and a "
                "validation set"
            )
        scale = n_raw / wanted
        num_validation = max(1, int(num_validation * scale)) if num_validation else 0
        num_training = n_raw - num_validation
        num_dev = max(1, int(num_dev * scale)) if num_dev else 0
        notes.append(
            f"{ds.name} has {n_raw} training images, fewer than the {wanted} asked for: "
            f"train, validation and dev shrink in proportion (x{scale:.4g})."
        )
    if num_dev > num_training:
        notes.append(f"The dev set can be at most the {num_training} training images.")
        num_dev = num_training
    if num_test > n_raw_test:
        notes.append(
            f"{ds.name} has {n_raw_test} test images, fewer than the {num_test} asked for."
        )
        num_test = n_raw_test

    dev = np.random.default_rng(0).choice(num_training, num_dev, replace=False)
    val = slice(num_training, num_training + num_validation)
    splits = {
        "X_train": ds.X_train[:num_training], "y_train": ds.y_train[:num_training],
        "X_val": ds.X_train[val], "y_val": ds.y_train[val],
        "X_test": ds.X_test[:num_test], "y_test": ds.y_test[:num_test],
        "X_dev": ds.X_train[dev], "y_dev": ds.y_train[dev],
    }  # fmt: skip
    if verbose:
        for note in notes:
            print(note)
        print(
            f"Split sizes: train {num_training}, validation {num_validation}, "
            f"test {num_test}, dev {num_dev}"
        )
    return splits


_SPLIT_NAMES = ("train", "val", "test", "dev")


def preprocess(splits: dict[str, np.ndarray], verbose: bool = True) -> dict[str, np.ndarray]:
    """Flatten images to rows, subtract the training mean image, append a bias column.

    The bias trick: a constant 1 feature at the end of each row lets the weight
    matrix W (D, C) hold the biases in its last row, so scores are just ``X.dot(W)``.

    Parameters
    ----------
    splits : dict from ``make_splits``: X_train, X_val, X_test, X_dev (n, H, W, C)
        images and y_train, y_val, y_test, y_dev (n,) labels.
    verbose : print every shape.

    Returns
    -------
    dict with X_train, X_val, X_test, X_dev as (n, H*W*C + 1) rows in the input dtype
    (integer images become float64), the y arrays unchanged, and ``mean_image``
    (H, W, C), the mean of the training images.
    """
    for s in _SPLIT_NAMES:
        for key in (f"X_{s}", f"y_{s}"):
            if key not in splits:
                raise ValueError(f"splits has no {key!r}; pass the dict from make_splits")
    shape = splits["X_train"].shape[1:]
    for s in _SPLIT_NAMES:
        X, y = splits[f"X_{s}"], splits[f"y_{s}"]
        if X.ndim != 4 or X.shape[1:] != shape or len(X) != len(y):
            raise ValueError(
                f"X_{s} should be ({len(y)}, *{shape}) images to match y_{s} and X_train; "
                f"its shape is {X.shape}"
            )
    if len(splits["X_train"]) == 0:
        raise ValueError("X_train is empty: there is no mean image to subtract")

    X_train = splits["X_train"]
    dtype = X_train.dtype if np.issubdtype(X_train.dtype, np.floating) else np.float64
    # accumulate in float64 so a float32 mean of 49000 images does not lose digits
    mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
    D = mean_image.size
    out: dict[str, np.ndarray] = {}
    for s in _SPLIT_NAMES:
        X = splits[f"X_{s}"]
        rows = np.empty((len(X), D + 1), dtype=dtype)
        np.subtract(X.reshape(len(X), D), mean_image.reshape(D), out=rows[:, :D])
        rows[:, D] = 1.0  # the bias trick
        out[f"X_{s}"], out[f"y_{s}"] = rows, splits[f"y_{s}"]
    out["mean_image"] = mean_image
    if verbose:
        for s in _SPLIT_NAMES:
            print(f"X_{s}: {out[f'X_{s}'].shape}, y_{s}: {out[f'y_{s}'].shape}")
        print(f"mean_image: {mean_image.shape}")
    return out
