"""The notebook's first code cell: Colab setup in Colab, import path without make, else nothing.

The cell is taken from the notebook as it ships. In Colab it mounts Google Drive, moves into
the kit's notebooks/ folder and puts the kit on sys.path. Here a stand-in ``google.colab``
module plays Colab: its ``drive.mount`` records the call and creates the ``MyDrive`` folder
that the real one provides, under a temporary folder that takes the place of /content/drive.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import envcache
import nbformat
import pytest
from notebook_cells import AUTORELOAD, import_prelude

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


def show_drive(mountpoint: str, cloud: str | None) -> None:
    """What the stand-in ``drive.mount`` does: show the files of ``cloud`` (the user's
    Drive) under ``<mount point>/MyDrive``, as the real one does."""
    import shutil
    from pathlib import Path

    my_drive = Path(mountpoint, "MyDrive")
    my_drive.mkdir(parents=True, exist_ok=True)
    if cloud is not None:
        shutil.copytree(cloud, my_drive, dirs_exist_ok=True)


def fake_colab(monkeypatch, mounted: list[str], cloud: Path | None = None) -> None:
    """Install stand-ins for ``google`` and ``google.colab`` with a ``drive`` module.

    Mounting records the mount point and does what :func:`show_drive` does.
    """
    drive = types.ModuleType("google.colab.drive")

    def mount(mountpoint: str) -> None:
        mounted.append(mountpoint)
        show_drive(mountpoint, None if cloud is None else str(cloud))

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


# --- Colab's real runtime: its Python and its versions, in a virtual environment ----------
#
# Colab's versions, from googlecolab/backend-info (pip-freeze.txt and os-info.txt at commit
# a724079 of 2026-08-19, "Upgrade to Python 3.13": Python 3.13.15): the packages the kit
# and Jupyter's kernel machinery load, and what pip installs with them where Colab lists
# them too. The venv is built once and kept in the tests' cache while these stay the same.
COLAB_PYTHON = (3, 13)
COLAB_PINS = """
ipython==7.34.0
ipykernel==6.17.1
jupyter_client==7.4.9
jupyter_core==5.9.1
nbclient==0.10.4
nbformat==5.11.1
traitlets==5.7.1
tornado==6.5.7
pyzmq==26.2.1
debugpy==1.8.15
prompt_toolkit==3.0.53
matplotlib-inline==0.2.2
ipywidgets==7.7.1
widgetsnbextension==3.6.10
jupyterlab_widgets==3.0.16
numpy==2.1.3
matplotlib==3.10.0
contourpy==1.3.3
cycler==0.12.1
fonttools==4.63.0
kiwisolver==1.5.0
pillow==11.3.0
pyparsing==3.3.2
python-dateutil==2.9.0.post0
packaging==26.3
tqdm==4.67.3
threadpoolctl==3.6.0
decorator==4.4.2
pickleshare==0.7.5
backcall==0.2.0
pexpect==4.9.0
psutil==5.9.5
nest-asyncio==1.6.0
entrypoints==0.4
platformdirs==4.11.3
fastjsonschema==2.22.2
jsonschema==4.26.0
""".split()
KIT_FOLDER_NAME = "cs231n-softmax"


def find_colab_python() -> str | None:
    """A Python of Colab's minor version: $COLAB_PYTHON, python3.13 on PATH, or pyenv's."""
    name = "python{}.{}".format(*COLAB_PYTHON)
    candidates = [os.environ.get("COLAB_PYTHON"), shutil.which(name)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(map(str, pyenv.glob(f"{name[6:]}*/bin/{name}")), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == str(COLAB_PYTHON):
            return candidate
    return None


@pytest.fixture(scope="module")
def colab_python() -> Path:
    """The Python of a venv with Colab's versions installed (built on first use, then
    kept in the tests' cache, see tests/envcache.py)."""
    want = "\n".join(COLAB_PINS) + "\n"

    def build(venv: Path) -> None:
        base = find_colab_python()
        if base is None:
            pytest.skip("no Python {}.{} here (Colab's); set COLAB_PYTHON".format(*COLAB_PYTHON))
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        (venv / "colab-pins.txt").write_text(want)
        install = subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--only-binary=:all:",
             "-r", str(venv / "colab-pins.txt")],
            capture_output=True, text=True, check=False, timeout=1200,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.fail(install.stderr[-3000:])

    return envcache.built("colab-venv", want, build) / "bin" / "python"


def write_fake_colab(site: Path) -> None:
    """``google.colab.drive`` as files, for a kernel in another process: its ``mount``
    does what :func:`show_drive` does, with the Drive's files in $FAKE_COLAB_CLOUD, and
    notes each mount point in $FAKE_COLAB_LOG."""
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "__init__.py").write_text("")
    (site / "google" / "colab" / "__init__.py").write_text("from . import drive\n")
    (site / "google" / "colab" / "drive.py").write_text(
        "import os\n\n"
        + textwrap.dedent(inspect.getsource(show_drive))
        + "\n\ndef mount(mountpoint):\n"
        "    with open(os.environ['FAKE_COLAB_LOG'], 'a') as log:\n"
        "        log.write(mountpoint + '\\n')\n"
        "    show_drive(mountpoint, os.environ['FAKE_COLAB_CLOUD'])\n"
    )


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> dict:
    """A Colab-like machine: /content (the kernel's folder), the user's Drive holding the
    kit as the README says to upload it, the stand-in google.colab, and the mount point."""
    top = tmp_path_factory.mktemp("colab")
    cloud = top / "cloud"
    kit = cloud / KIT_FOLDER_NAME
    for part in ("cs231n", "notebooks", "datasets/fashion-mnist"):
        shutil.copytree(REPO / part, kit / part, ignore=shutil.ignore_patterns("__pycache__"))
    for extra in (REPO / "datasets").glob("*.*"):
        shutil.copy(extra, kit / "datasets" / extra.name)
    write_fake_colab(top / "site")
    (top / "content").mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "CS231N", "MPL"))
    }
    env.update(
        PYTHONPATH=str(top / "site"),  # what Colab has: google.colab, not the kit
        FAKE_COLAB_CLOUD=str(cloud),
        FAKE_COLAB_LOG=str(top / "mounts.log"),
        JUPYTER_PATH=str(top / "jupyter"),  # no kernel of this machine's user
        JUPYTER_DATA_DIR=str(top / "jupyter"),
        CS231N_DATASET="fashion-mnist",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return {"top": top, "kit": kit, "content": top / "content", "mount": top / "content" / "drive",
            "env": env}  # fmt: skip


def as_in_colab(source: str, mount: Path) -> str:
    return source.replace(MOUNT_LINE, f"MOUNT = {str(mount)!r}")


def imports_cell_calls_deps(nb: nbformat.NotebookNode) -> bool:
    """Whether both calls of cs231n._deps run before autoreload is loaded."""
    before = import_prelude(nb).split(AUTORELOAD)[0]
    return "install_imp_shim()" in before and "require_packages()" in before


RUN_NOTEBOOK = """
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
report = []
for cell in nb.cells:
    for out in cell.get("outputs", []):
        text = out.get("text", "") if out.output_type == "stream" else ""
        report.append({"id": cell.get("id"), "type": out.output_type, "name": out.get("name"),
                       "text": text, "ename": out.get("ename"), "evalue": out.get("evalue")})
print(json.dumps(report))
"""


def run_in_colab(colab: dict, python: Path, cells: list, cwd: Path) -> list[dict]:
    """Execute ``cells`` in a kernel of Colab's versions started in ``cwd``; every output."""
    notebook = colab["top"] / f"run-{len(list(colab['top'].glob('run-*')))}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), notebook)
    result = subprocess.run(
        [str(python), "-c", RUN_NOTEBOOK, str(notebook), str(cwd)],
        env=colab["env"], capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_colabs_runtime_runs_the_notebook_with_no_errors(colab_python, colab):
    """The kit's notebook, as uploaded to Drive, opened in Colab's runtime from /content,
    up to the "Optional" heading (all of it while it has none)."""
    nb = nbformat.read(colab["kit"] / "notebooks/softmax.ipynb", as_version=4)
    assert imports_cell_calls_deps(nb), "the notebook must call cs231n._deps before autoreload"
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.match(r"#+\s*(\d+\.\s*)?Optional", cell.source):
            break
        if cell.cell_type == "code" and MOUNT_LINE in cell.source:
            cell.source = as_in_colab(cell.source, colab["mount"])
        cells.append(cell)
    versions = nbformat.v4.new_code_cell(
        "import sys, numpy, matplotlib, IPython, ipykernel, os\n"
        "print('versions', sys.version_info[:2], numpy.__version__, matplotlib.__version__,"
        " IPython.__version__, ipykernel.__version__)\nprint('cwd', os.getcwd())"
    )
    outputs = run_in_colab(colab, colab_python, [*cells, versions], colab["content"])
    errors = [o for o in outputs if o["type"] == "error"]
    assert errors == [], errors
    fails = [o for o in outputs if o["type"] == "stream" and "\nFAIL " in "\n" + o["text"]]
    assert fails == []
    printed = "".join(o["text"] for o in outputs if o["name"] == "stdout")
    assert f"versions {COLAB_PYTHON} 2.1.3 3.10.0 7.34.0 6.17.1\n" in printed
    assert f"cwd {colab['mount'] / 'MyDrive' / KIT_FOLDER_NAME / 'notebooks'}\n" in printed
    assert (colab["top"] / "mounts.log").read_text() == f"{colab['mount']}\n"
    assert "PASS softmax_loss_naive" in printed  # the check cells ran, on the reference code


def test_in_colabs_runtime_autoreload_needs_the_stand_in_and_then_reloads(colab_python, colab):
    """IPython 7.34 on Python 3.13: %load_ext autoreload fails for want of imp; after
    install_imp_shim() it loads, and an edited module is re-imported."""
    work = colab["top"] / "autoreload"
    work.mkdir()
    (work / "edited.py").write_text("VALUE = 1\n")
    kit = str(REPO)
    new = nbformat.v4.new_code_cell
    cells = [
        new("%load_ext autoreload"),
        new(f"import sys\nsys.path.insert(0, {kit!r})\nfrom cs231n._deps import install_imp_shim"
            "\ninstall_imp_shim()\n%load_ext autoreload\n%autoreload 2\nimport edited\n"
            "print(edited.VALUE)"),
        new("import os, time\nopen('edited.py', 'w').write('VALUE = 2\\n')\n"
            "os.utime('edited.py', (time.time() + 5, time.time() + 5))"),
        new("print(edited.VALUE)"),
    ]  # fmt: skip
    outputs = run_in_colab(colab, colab_python, cells, work)
    assert [(o["ename"], o["evalue"]) for o in outputs if o["type"] == "error"] == [
        ("ModuleNotFoundError", "No module named 'imp'")  # the first cell, without it
    ]
    assert [o["text"] for o in outputs if o["name"] == "stdout"] == ["1\n", "2\n"]


def test_colabs_runtime_runs_the_checks(colab_python, colab):
    """`!python -m cs231n.checks` in a Colab cell, after %cd into the kit on Drive."""
    result = subprocess.run(
        [str(colab_python), "-m", "cs231n.checks"], cwd=colab["kit"], env=colab["env"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("PASS ") for line in lines), lines
    assert result.stderr == ""


def test_colabs_runtime_packs_a_submission(colab_python, colab):
    """`!python -m cs231n.submission` in the kit on Drive: the kit's code, and a released
    notebook made of the real first cells (Colab setup, imports) and a check cell."""
    from tools.release import build
    from tools.release import notebook as nbsteps

    kit = colab["mount"] / "MyDrive" / "packing"
    shutil.copytree(REPO / "cs231n", kit / "cs231n", ignore=shutil.ignore_patterns("__pycache__"))
    real = nbformat.read(REPO / "notebooks/softmax.ipynb", as_version=4)
    setup = as_in_colab(setup_cell(), colab["mount"]).replace(
        f'KIT_FOLDER = "{KIT_FOLDER_NAME}"', 'KIT_FOLDER = "packing"'
    )
    imports = import_prelude(real)
    assert imports_cell_calls_deps(real)
    cells = [
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell(imports),
        nbformat.v4.new_code_cell('passed = check("predict")'),
    ]
    data = nbsteps.write(nbformat.v4.new_notebook(cells=cells))
    (kit / "notebooks").mkdir()
    (kit / "notebooks/softmax.ipynb").write_bytes(data)
    record = build.record_release({"notebooks/softmax.ipynb": build.File(data)})
    for rel, file in record.items():
        (kit / rel).write_bytes(file.data)
    result = subprocess.run(
        [str(colab_python), "-m", "cs231n.submission"], cwd=kit, env=colab["env"],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": complete" in result.stdout, result.stdout
    with zipfile.ZipFile(kit / "submission.zip") as zf:
        assert json.loads(zf.read("incomplete.json"))["complete"] is True
        packed = nbformat.reads(zf.read("notebooks/softmax.ipynb").decode(), as_version=4)
    assert [o.get("text") for o in packed.cells[2].outputs][0].startswith("PASS predict")
