"""The notebook's first code cell: Colab setup in Colab, import path without make, else nothing.

The cell is taken from the notebook as it ships. In Colab it mounts Google Drive, moves into
the kit's notebooks/ folder and puts the kit on sys.path. Here a stand-in ``google.colab``
module plays Colab: its ``drive.mount`` records the call and creates the ``MyDrive`` folder
that the real one provides, under a temporary folder that takes the place of /content/drive.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "softmax.ipynb"
MOUNT_LINE = 'MOUNT = "/content/drive"'


def setup_cell() -> str:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "google.colab" in first.source, "the first code cell is the Colab setup"
    assert first.source.count(MOUNT_LINE) == 1, f"the cell sets {MOUNT_LINE}"
    return first.source


def kit_folder(source: str) -> str:
    match = re.search(r'^KIT_FOLDER = "([^"]+)"', source, re.MULTILINE)
    assert match, "the cell sets KIT_FOLDER, the one variable a Colab user edits"
    return match[1]


def fake_colab(monkeypatch, mounted: list[str], cloud: Path | None = None) -> None:
    """Install stand-ins for ``google`` and ``google.colab`` with a ``drive`` module.

    Mounting records the mount point and shows the files of ``cloud`` (the user's Drive)
    under ``<mount point>/MyDrive``, as the real ``drive.mount`` does.
    """
    drive = types.ModuleType("google.colab.drive")

    def mount(mountpoint: str) -> None:
        mounted.append(mountpoint)
        my_drive = Path(mountpoint, "MyDrive")
        my_drive.mkdir(parents=True, exist_ok=True)
        if cloud is not None:
            shutil.copytree(cloud, my_drive, dirs_exist_ok=True)

    drive.mount = mount
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)


def run_cell(source: str, mount: Path) -> dict:
    namespace: dict = {}
    exec(source.replace(MOUNT_LINE, f"MOUNT = {str(mount)!r}"), namespace)  # noqa: S102
    return namespace


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Restore the working directory and sys.path after the cell changes them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def make_kit(root: Path) -> Path:
    (root / "cs231n").mkdir(parents=True)
    (root / "cs231n" / "__init__.py").write_text("")
    (root / "notebooks").mkdir()
    return root


def test_in_colab_the_cell_mounts_drive_enters_the_kit_and_imports_from_it(monkeypatch, isolated):
    source = setup_cell()
    folder = kit_folder(source)
    make_kit(isolated / "cloud" / folder)
    mounted: list[str] = []
    fake_colab(monkeypatch, mounted, cloud=isolated / "cloud")
    mount = isolated / "content" / "drive"
    kit = mount / "MyDrive" / folder

    namespace = run_cell(source, mount)
    assert mounted == [str(mount)]
    assert Path.cwd() == kit / "notebooks"
    assert sys.path[0] == str(kit)
    assert namespace["drive"] is sys.modules["google.colab.drive"]

    run_cell(source, mount)  # run again (or by `make submission`'s headless kernel)
    assert mounted == [str(mount)], "Drive is mounted already: no second mount"
    assert Path.cwd() == kit / "notebooks"


def test_in_colab_a_missing_kit_folder_is_named_with_what_to_do(monkeypatch, isolated):
    fake_colab(monkeypatch, [])
    mount = isolated / "drive"
    before = list(sys.path)
    with pytest.raises(FileNotFoundError, match=r"no cs231n/ in .*MyDrive.*set KIT_FOLDER"):
        run_cell(setup_cell(), mount)
    assert Path.cwd() == isolated and sys.path == before


def test_outside_colab_with_cs231n_installed_the_cell_changes_nothing(isolated):
    assert "google.colab" not in sys.modules
    make_kit(isolated / "kit")
    os.chdir(isolated / "kit" / "notebooks")
    before = list(sys.path)
    namespace = run_cell(setup_cell(), isolated / "unused")
    assert namespace["drive"] is None
    assert Path.cwd() == isolated / "kit" / "notebooks" and sys.path == before
    assert not (isolated / "unused").exists()


def test_jupyter_without_make_gets_the_kit_on_its_import_path(tmp_path):
    # A fresh interpreter without site-packages (-S) and without the current folder on
    # sys.path (-I) cannot import an installed cs231n, as on a JupyterHub without make.
    kit = make_kit(tmp_path / "kit")
    (kit / "cs231n" / "__init__.py").write_text("WHERE = 'the kit copy'\n")
    script = setup_cell() + "\nimport cs231n\nprint(cs231n.WHERE, cs231n.__file__)\n"
    result = subprocess.run(
        [sys.executable, "-S", "-I", "-c", script],
        cwd=kit / "notebooks",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the kit copy ")
    assert Path(result.stdout.split(" ", 3)[-1].strip()) == kit / "cs231n" / "__init__.py"
