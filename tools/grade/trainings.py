"""The grader's own training runs: what the notebook's search is checked against, kept.

The notebook's hyperparameter search trains one model per configuration, about a second
each on the bundled data: nine such runs are most of a graded notebook's time. Those
runs are the reference's ``Softmax.train`` on the notebook's own training split (the
reference's ``cs231n`` stands in for the student's in the graded kernel), so one run's
result is fixed by its settings, and most of a class picks the same few settings.

:class:`Trainings` makes each run here, in the grader, from the reference code and the
bundled data, never from anything a kernel reported, and keeps it in a folder
(``OUT/.trainings/``): the weights, the losses and the two accuracies. Before each kernel
starts, a copy of the folder goes into that kernel's own folder
(``tools/grade/kernel_shim.py`` reads it): a run the grader made before costs the kernel
a file read. After the kernel, the grader makes the runs the notebook reported that it
does not have yet, and checks the notebook's numbers against them.

Each run is named by the SHA-256 of the reference's training code, the data and the
settings (:func:`kernel_shim.training_key`), so an edited reference or other data never
finds an old run. Files are written whole (a temporary name, then a rename); two workers
making the same run at once write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import kernel_shim

FOLDER = ".trainings"  # under OUT
DATASET = "fashion-mnist"
NUM_TRAINING = 7000  # the notebook's training split on the bundled data
DTYPE = np.float32  # the notebook's DTYPE
MAX_ITERS = 20_000  # settings beyond these are not run here: the check fails instead
MAX_BATCH = 10_000
_REPO = Path(__file__).resolve().parents[2]
_CODE = ("cs231n/classifiers/linear_classifier.py", "cs231n/classifiers/softmax.py")


def code_hash() -> str:
    """SHA-256 of the reference's training code (the files train and its loss live in)."""
    digest = hashlib.sha256()
    for rel in _CODE:
        digest.update((_REPO / rel).read_bytes())
    return digest.hexdigest()


class Trainings:
    """Runs of the reference's ``Softmax.train`` on the notebook's splits, kept in ``folder``.

    The data are loaded the way the notebook's cells load them (bundled Fashion-MNIST in
    float32, 7,000 training images, preprocessed), once per process, on first use.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._data: dict | None = None
        self._code = code_hash()

    def data(self) -> dict:
        if self._data is None:
            from cs231n.data_utils import load_dataset, make_splits, preprocess

            ds = load_dataset(DATASET, dtype=DTYPE, verbose=False)
            splits = make_splits(ds, num_training=NUM_TRAINING, verbose=False)
            data = preprocess(splits, verbose=False)
            self._data = {
                **{k: data[k] for k in ("X_train", "y_train", "X_val", "y_val")},
                "hash": kernel_shim.data_hash(data["X_train"], data["y_train"]),
            }
        return self._data

    def index(self) -> dict:
        return {"code": self._code, "data": self.data()["hash"]}

    def copy_into(self, dest: Path) -> None:
        """Put ``kernel_shim.TRAININGS`` (index and every kept run) into ``dest``."""
        target = Path(dest) / kernel_shim.TRAININGS
        target.mkdir(parents=True, exist_ok=True)
        (target / "index.json").write_text(json.dumps(self.index()))
        if self.folder.is_dir():
            for run in self.folder.glob("*.npz"):
                shutil.copyfile(run, target / run.name)

    def runnable(self, settings: dict) -> bool:
        return (
            settings["learning_rate"] > 0
            and settings["reg"] >= 0
            and 1 <= settings["num_iters"] <= MAX_ITERS
            and 1 <= settings["batch_size"] <= MAX_BATCH
            and settings["num_classes"] in (None, 10)
        )

    def _path(self, settings: dict) -> Path:
        key = kernel_shim.training_key(self._code, self.data()["hash"], settings)
        return self.folder / f"{key}.npz"

    def has(self, settings: dict) -> bool:
        """Whether the run of these settings is kept already."""
        return self._path(settings).is_file()

    def run(self, settings: dict) -> dict:
        """``{"W", "history", "train_acc", "val_acc"}`` of one run, made now or kept."""
        path = self._path(settings)
        try:
            with np.load(path) as kept:
                return {name: kept[name] for name in ("W", "history", "train_acc", "val_acc")}
        except (OSError, KeyError, ValueError):
            pass
        from cs231n.classifiers import Softmax

        data = self.data()
        model = Softmax()
        history = model.train(data["X_train"], data["y_train"], **settings)
        made = {
            "W": model.W,
            "history": np.asarray(history, dtype=np.float64),
            "train_acc": np.float64(np.mean(model.predict(data["X_train"]) == data["y_train"])),
            "val_acc": np.float64(np.mean(model.predict(data["X_val"]) == data["y_val"])),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **made)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return made

    def val_accuracy(self, W: np.ndarray) -> float:
        """The validation accuracy of weights W (the reference's predict)."""
        from cs231n.classifiers import Softmax

        data = self.data()
        model = Softmax()
        model.W = np.asarray(W, dtype=data["X_val"].dtype)
        return float(np.mean(model.predict(data["X_val"]) == data["y_val"]))
