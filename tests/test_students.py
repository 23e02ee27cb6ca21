"""Where students run the kit: a missing package gets one message, Windows' `os`, and a
CPU quota on a shared hub.

Missing packages are hidden from a fresh interpreter by setting ``sys.modules[name] =
None`` before the entry point runs, which makes ``import name`` fail as it would where the
package is not installed. Windows is played by removing what its ``os`` lacks
(``O_NONBLOCK``, ``O_NOFOLLOW``) and adding what it has (``O_BINARY``). A CPU quota is a
hand-made cgroup file tree.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import envcache
import nbformat
import pytest
from notebook_cells import import_prelude
from threadpoolctl import threadpool_info

from cs231n import _deps, _threads, submission

REPO = Path(__file__).resolve().parents[1]
KIT = ["numpy", "matplotlib", "tqdm", "threadpoolctl"]  # what every part of the kit imports
JUPYTER = ["nbformat", "nbclient", "ipykernel"]  # what packing imports on top


def run_hiding(hidden: list[str], code: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which the modules ``hidden`` cannot be
    imported."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in hidden)
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_module(hidden: list[str], module: str) -> subprocess.CompletedProcess:
    return run_hiding(hidden, f"import runpy\nrunpy.run_module({module!r}, run_name='__main__')")


def assert_one_message(result: subprocess.CompletedProcess, missing: list[str]) -> None:
    """Exit status 1, no traceback, and a message that names exactly ``missing`` and the
    pip command that installs only those."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    names = sorted(missing)
    lines = result.stderr.splitlines()
    command = next(line for line in lines if " -m pip install " in line)
    keep = [] if "numpy" in missing else [f"numpy=={importlib.metadata.version('numpy')}"]
    assert sorted(command.split(" -m pip install ", 1)[1].split()) == sorted(names + keep)
    assert command.strip().startswith(sys.executable)  # this very Python, not some "python"
    assert lines[0].startswith("the cs231n kit needs ")
    named = re.findall(r"[\w-]+", lines[0].split("needs ", 1)[1].split(", not installed")[0])
    assert sorted(set(named) - {"and"}) == names
    assert "%pip install " + " ".join(missing + keep) in result.stderr
    assert "--user" in result.stderr


@pytest.mark.parametrize("package", KIT)
def test_each_missing_package_gets_one_message_from_the_checks(package):
    assert_one_message(run_module([package], "cs231n.checks"), [package])


@pytest.mark.parametrize("package", KIT + JUPYTER)
def test_each_missing_package_gets_one_message_from_the_packer(package):
    pip_name = {"IPython": "ipython"}.get(package, package)
    assert_one_message(run_module([package], "cs231n.submission"), [pip_name])


def test_all_missing_packages_are_named_at_once():
    result = run_module(["tqdm", "threadpoolctl", "nbclient"], "cs231n.submission")
    assert_one_message(result, ["tqdm", "threadpoolctl", "nbclient"])


def test_importing_the_checks_raises_one_import_error_naming_the_command():
    """In a notebook (an import, not a command) the message comes as an ImportError."""
    result = run_hiding(
        ["tqdm"],
        "try:\n    import cs231n.checks\nexcept ImportError as e:\n"
        "    print(type(e).__name__, e.name); print(e)\n",
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert first == "ImportError tqdm"
    assert second == "the cs231n kit needs tqdm, not installed in this Python"


def test_the_package_itself_imports_nothing_outside_the_standard_library():
    """With every third-party package hidden, ``import cs231n`` and ``cs231n._deps`` still
    work, so the notebook's first cells can call them before anything else."""
    result = run_hiding(
        KIT + JUPYTER + ["IPython"],
        "import cs231n, cs231n._deps\n"
        "cs231n._deps.install_imp_shim()\n"
        "try:\n    cs231n._deps.require_packages()\nexcept ImportError as e:\n    print(e)\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "the cs231n kit needs numpy, matplotlib, tqdm and threadpoolctl, not installed"
    )


def test_a_package_older_than_the_minimum_is_named_with_an_upgrade(monkeypatch):
    real = _deps.importlib.metadata.version
    monkeypatch.setattr(
        _deps.importlib.metadata,
        "version",
        lambda name: "3.0.1" if name == "threadpoolctl" else real(name),
    )
    with pytest.raises(ImportError) as error:
        _deps.require_packages()
    message = str(error.value)
    assert "needs threadpoolctl >= 3.1; this Python has 3.0.1" in message
    numpy = importlib.metadata.version("numpy")
    assert f"-m pip install 'threadpoolctl>=3.1' numpy=={numpy}" in message  # > redirects
    assert error.value.name == "threadpoolctl"


@pytest.mark.parametrize(
    ("version", "numbers"),
    [("2.1.3", (2, 1, 3)), ("1.26.4", (1, 26, 4)), ("3.10.0rc1", (3, 10, 0)), ("4.67", (4, 67)),
     ("2.0.0.post1", (2, 0, 0)), ("1.dev0", (1,))],
)  # fmt: skip
def test_versions_compare_by_their_release_numbers(version, numbers):
    assert _deps._numbers(version) == numbers


def test_the_minimums_agree_with_requirements_student():
    """requirements-student.txt, the list students install from, says what _deps checks."""
    listed = {}
    for line in (REPO / "requirements-student.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, minimum = re.fullmatch(r"([\w-]+)>=([\d.]+)", line).groups()
            listed[name.lower()] = minimum
    wanted = {pip: v for pip, v in {**_deps.PACKAGES, **_deps.NOTEBOOK_PACKAGES}.values()}
    assert listed == wanted
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["notebook"]]
    assert dict(d.lower().split(">=") for d in declared) == wanted


def test_the_imp_stand_in_is_registered_only_where_imp_is_gone(monkeypatch):
    if sys.version_info < (3, 12):  # imp exists: nothing changes
        monkeypatch.delitem(sys.modules, "imp", raising=False)
        _deps.install_imp_shim()
        assert "imp" not in sys.modules  # looked up, not imported (importing it warns)
    monkeypatch.setitem(sys.modules, "imp", None)  # as on 3.12: `import imp` fails
    _deps.install_imp_shim()
    from imp import reload  # what IPython 7's autoreload does

    assert reload is importlib.reload
    shim = sys.modules["imp"]
    _deps.install_imp_shim()  # a second call keeps the first stand-in
    assert sys.modules["imp"] is shim


def first_third_party_line(lines: list[str]) -> int:
    """The index of the first line that loads a third-party package: a magic (even
    %matplotlib imports matplotlib), an import of one, or of cs231n beyond _deps."""
    return min(
        (
            i
            for i, line in enumerate(lines)
            if line.startswith("%")
            or re.match(rf"(import|from) ({'|'.join([*KIT, 'IPython'])})\b", line)
            or re.match(r"(import|from) cs231n\.(?!_deps)", line)
        ),
        default=len(lines),
    )


def import_cell_prelude() -> str:
    """The notebook's opening code up to its first line that loads a third-party package:
    the part that runs first (the contract's two calls)."""
    nb = nbformat.read(REPO / "notebooks/softmax.ipynb", as_version=4)
    lines = import_prelude(nb).splitlines()
    return "\n".join(lines[: first_third_party_line(lines)]) + "\n"


@pytest.mark.parametrize("package", KIT)
def test_the_notebooks_import_cell_names_a_missing_package(package):
    code = f"try:\n{textwrap.indent(import_cell_prelude(), '    ')}except ImportError as e:\n"
    result = run_hiding([package], code + "    print(e)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"the cs231n kit needs {package}, not installed"), (
        result.stdout
    )


def test_the_notebook_calls_both_before_any_third_party_import():
    """The notebook's opening code: install_imp_shim() and require_packages() come before
    %load_ext autoreload and before any import of a third-party package."""
    nb = nbformat.read(REPO / "notebooks/softmax.ipynb", as_version=4)
    lines = import_prelude(nb).splitlines()
    first = first_third_party_line(lines)
    calls = [
        i
        for i, line in enumerate(lines)
        if re.match(r"\w*\.?(install_imp_shim|require_packages)\(", line)
    ]
    assert len(calls) == 2 and max(calls) < first, "\n".join(lines)


# --- Windows: the packer with the os of Windows -------------------------------------------


O_BINARY = 0x8000  # Windows' value


@pytest.fixture
def windows_os(monkeypatch):
    """``os`` as on Windows: no O_NONBLOCK, no O_NOFOLLOW, an O_BINARY that every open of
    a file to pack must use (the stand-in checks it, then opens as Linux can)."""
    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.delattr(os, "O_NOFOLLOW")
    monkeypatch.setattr(os, "O_BINARY", O_BINARY, raising=False)
    opened = []
    real_open = os.open

    def windows_open(path, flags, *args, **kwargs):
        if not flags & (os.O_WRONLY | os.O_RDWR):  # reading: must be binary
            assert flags & O_BINARY, f"{path} opened without O_BINARY: text mode on Windows"
            opened.append(os.fspath(path))
        return real_open(path, flags & ~O_BINARY, *args, **kwargs)

    monkeypatch.setattr(os, "open", windows_open)
    return opened


def test_the_packer_works_with_the_os_of_windows(windows_os, tmp_path):
    root = tmp_path / "kit"
    (root / "cs231n/classifiers").mkdir(parents=True)
    (root / "notebooks").mkdir()
    code = {
        "cs231n/__init__.py": b'"""The package."""\r\n',  # CRLF kept byte for byte
        "cs231n/classifiers/softmax.py": b"x = '\x1a'\n",  # ^Z: end of file in text mode
    }
    for rel, data in code.items():
        (root / rel).write_bytes(data)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    (root / submission.NOTEBOOK).write_text(nbformat.writes(nb))
    assert submission.code_files(root) == code
    assert submission.read_notebook(root).cells[0].source == "1"
    archive = submission.pack(root, nb, {"complete": True})
    with zipfile.ZipFile(archive) as zf:
        assert {name: zf.read(name) for name in code} == code
    assert sorted(windows_os) == sorted([*map(str, (root / rel for rel in code))] * 2
                                        + [str(root / submission.NOTEBOOK)])  # fmt: skip


# --- a CPU quota --------------------------------------------------------------------------


def cgroup_tree(tmp_path: Path, files: dict[str, str], self_cgroup: str) -> tuple[Path, Path]:
    """A cgroup file system under tmp_path/cgroup (``files``: path -> content) and a
    /proc/self/cgroup that puts this process in ``self_cgroup``."""
    root = tmp_path / "cgroup"
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(textwrap.dedent(self_cgroup))
    return root, proc


@pytest.mark.parametrize(
    ("files", "self_cgroup", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, "0::/\n", None),  # v2, no limit
        ({"cpu.max": "100000 100000\n"}, "0::/\n", 1.0),  # v2 inside a container
        ({"cpu.max": "150000 100000\n"}, "0::/\n", 1.5),
        # v2, nested: the parent's limit binds; the host's path is followed
        ({"cpu.max": "max 100000", "hub/cpu.max": "50000 100000",
          "hub/user-7/cpu.max": "200000 100000"}, "0::/hub/user-7\n", 0.5),
        # v2, a path that is not there (the host's view): the mount itself is ours
        ({"cpu.max": "300000 100000"}, "0::/kubepods/pod1/abc\n", 3.0),
        # v1, the cpu controller mounted with cpuacct
        ({"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
         "12:memory:/x\n4:cpu,cpuacct:/\n", 1.0),
        # v1, no quota (-1)
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "2:cpu:/\n", None),
        # v1 nested, and a v2 line of a hybrid system without cpu.max
        ({"cpu/docker/cpu.cfs_quota_us": "250000", "cpu/docker/cpu.cfs_period_us": "100000",
          "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000", "unified/x": ""},
         "1:cpu:/docker\n0::/\n", 2.5),
        ({"cpu.max": "garbage"}, "0::/\n", None),
        ({}, "not a cgroup line\n", None),
    ],
)  # fmt: skip
def test_the_quota_is_read_from_cgroup_v2_and_v1(tmp_path, files, self_cgroup, quota):
    root, proc = cgroup_tree(tmp_path, files, self_cgroup)
    assert _threads.cpu_quota(root, proc) == quota


def test_no_cgroup_file_system_means_no_quota(tmp_path):
    assert _threads.cpu_quota(tmp_path / "none", tmp_path / "no-proc") is None
    cpus = len(os.sched_getaffinity(0))
    assert _threads.usable_cpus(tmp_path / "none", tmp_path / "no-proc") == cpus


@pytest.fixture
def quota_of_one_cpu(tmp_path, monkeypatch):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine has one CPU: a quota of 1 changes nothing")
    root, proc = cgroup_tree(tmp_path, {"cpu.max": "100000 100000\n"}, "0::/\n")
    monkeypatch.setattr(_threads, "CGROUP_ROOT", root)
    monkeypatch.setattr(_threads, "SELF_CGROUP", proc)


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_a_quota_of_one_cpu_gives_one_blas_thread(quota_of_one_cpu):
    assert _threads.usable_cpus() == 1
    before = blas_threads()
    with _threads.adaptive_blas_threads() as tuner:
        assert tuner.most == 1
        assert blas_threads() == [1] * len(before)
        for _ in range(100):
            _threads.tick()
            assert blas_threads() == [1] * len(before)
    assert blas_threads() == before  # restored on leaving
    try:
        assert _threads.limit_blas_threads_for_workers(1) == 1
        assert blas_threads() == [1] * len(before)
    finally:
        _threads._blas().limit(limits=max(before))


def test_without_a_quota_the_usual_count_stays(tmp_path, monkeypatch):
    root, proc = cgroup_tree(tmp_path, {"cpu.max": "max 100000\n"}, "0::/\n")
    monkeypatch.setattr(_threads, "CGROUP_ROOT", root)
    monkeypatch.setattr(_threads, "SELF_CGROUP", proc)
    before = blas_threads()
    with _threads.adaptive_blas_threads() as tuner:
        assert tuner.most == min(max(before), len(os.sched_getaffinity(0)))


# --- the release zip and the Colab instructions agree -------------------------------------


def test_the_release_zips_top_folder_is_the_one_the_colab_cell_expects(tmp_path, monkeypatch):
    """Unzipped and uploaded to Drive as it is, the kit lands where KIT_FOLDER points."""
    from tools.release import build

    monkeypatch.setattr(build, "build_edition", lambda src, git: {"a.txt": build.File(b"a")})
    monkeypatch.setattr(build, "describe", lambda src: ("0" * 40, []))
    assert build.main(["--src", str(tmp_path), "--dist", str(tmp_path / "dist")]) == 0
    with zipfile.ZipFile(tmp_path / "dist/student.zip") as zf:
        tops = {name.split("/", 1)[0] for name in zf.namelist()}
    nb = nbformat.read(REPO / "notebooks/softmax.ipynb", as_version=4)
    colab = next(c.source for c in nb.cells if "google.colab" in c.source)
    kit_folder = re.search(r'^KIT_FOLDER = "([^"]+)"', colab, re.MULTILINE)[1]
    assert tops == {kit_folder}
    readme = (REPO / "tools/release/student/README.md").read_text()
    assert f"My Drive/{kit_folder}`" in readme and f"/MyDrive/{kit_folder}\n" in readme


# --- a JupyterHub user: a system Python with numpy 1.26, pandas and scipy -----------------
#
# The stand-in hub's system Python is a copy of a Python installation (the interpreter and
# its standard library) with what a hub image typically has installed into its own
# site-packages, as an administrator would. A virtual environment cannot stand in for it:
# pip refuses --user installs inside one. The student has a home folder of their own and
# follows the install line of requirements-student.txt (the README says the same).
HUB_SYSTEM = ["numpy==1.26.4", "pandas==2.1.4", "scipy==1.11.4", "ipykernel==6.29.5"]
HUB_PYTHON = (3, 12)


def find_python(version: tuple[int, int]) -> str | None:
    """An interpreter of ``version`` with its standard library beside it (pyenv's, or
    one on PATH)."""
    name = "python{}.{}".format(*version)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [*sorted(map(str, pyenv.glob(f"{name[6:]}*/bin/{name}"))), shutil.which(name)]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys, ensurepip; print(sys.prefix == sys.base_prefix)"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.stdout.strip() == "True":
            return candidate
    return None


def copy_python(base: str, dest: Path) -> Path:
    """Copy the interpreter ``base`` and its standard library (less its tests and GUI
    parts) to ``dest``, with an empty site-packages; return the copy's interpreter."""
    code = "import sys, sysconfig; print(sys.base_prefix); print(sysconfig.get_path('stdlib'))"
    prefix, stdlib = subprocess.run(
        [base, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    version = Path(stdlib).name
    python = dest / "bin" / Path(base).name
    python.parent.mkdir(parents=True)
    shutil.copy2(Path(base).resolve(), python)
    skip = shutil.ignore_patterns("test", "site-packages", "__pycache__", "idlelib", "tkinter")
    shutil.copytree(stdlib, dest / "lib" / version, ignore=skip)
    (dest / "lib" / version / "site-packages").mkdir()
    return python


@pytest.fixture(scope="module")
def hub_python() -> Path:
    """The stand-in hub's system Python (built on first use, then kept in the tests'
    cache, see tests/envcache.py)."""
    want = "\n".join(HUB_SYSTEM) + "\n"

    def build(root: Path) -> None:
        base = find_python(HUB_PYTHON)
        if base is None:
            pytest.skip("no Python {}.{} here to play the hub's system Python".format(*HUB_PYTHON))
        python = copy_python(base, root)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PYTHONNOUSERSITE"] = "1"  # the administrator's install: not into anyone's home
        for step in (["-m", "ensurepip"], ["-m", "pip", "install", "--quiet", *HUB_SYSTEM]):
            done = subprocess.run(
                [str(python), *step], env=env, capture_output=True, text=True, check=False,
                timeout=1200,
            )  # fmt: skip
            if done.returncode != 0:
                pytest.fail(done.stdout[-2000:] + done.stderr[-3000:])

    return next((envcache.built("hub-python", want, build) / "bin").glob("python3.*"))


def install_lines() -> list[str]:
    """The install commands that requirements-student.txt's header gives students."""
    text = (REPO / "requirements-student.txt").read_text()
    return re.findall(r"^#\s+(python -m pip .*)$", text, re.MULTILINE)


def test_a_hub_user_follows_the_instructions_and_keeps_a_working_pandas(hub_python, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env = {k: v for k, v in env.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), PYTHONUSERBASE=str(home / ".local"))
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))  # downloads, once

    def python(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([str(hub_python), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, check=False, timeout=1200)  # fmt: skip

    their_work = (
        "import numpy, pandas, scipy.linalg\n"
        "frame = pandas.DataFrame({'a': numpy.arange(3.0)})\n"
        "print(numpy.__version__, pandas.__version__, scipy.__version__,"
        " float(scipy.linalg.det(numpy.eye(2) * 2)), frame['a'].sum())\n"
    )
    before = python("-c", their_work)
    assert before.stdout == "1.26.4 2.1.4 1.11.4 4.0 3.0\n", before.stderr

    commands = install_lines()
    assert len(commands) == 2 and "install --user -r requirements-student.txt" in commands[1]
    shutil.copy(REPO / "requirements-student.txt", tmp_path)  # tmp_path plays the kit's folder
    for command in commands:  # as typed in a shell there
        done = subprocess.run(
            command.replace("python", shlex.quote(str(hub_python)), 1), shell=True, cwd=tmp_path,
            env=env, capture_output=True, text=True, check=False, timeout=1200,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    after = python("-c", their_work)
    assert after.returncode == 0 and after.stdout == before.stdout, after.stderr
    user_site = python("-c", "import site; print(site.getusersitepackages())").stdout.strip()
    added = {p.name.split("-")[0].lower() for p in Path(user_site).glob("*.dist-info")}
    assert {"matplotlib", "tqdm", "threadpoolctl", "nbclient"} <= added
    assert not added & {"numpy", "pandas", "scipy", "ipykernel", "pytest", "ruff", "nbval"}

    checks = python("-m", "cs231n.checks", cwd=REPO)  # the kit works on numpy 1.26 too
    assert checks.returncode == 0, checks.stdout + checks.stderr
    assert checks.stdout.count("PASS ") == 5

    # A virtual environment of their own shows up in Jupyter once its kernel is registered.
    kernel = python("-m", "ipykernel", "install", "--user", "--name", "cs231n-softmax")
    assert kernel.returncode == 0, kernel.stderr
    spec = json.loads(
        (home / ".local/share/jupyter/kernels/cs231n-softmax/kernel.json").read_text()
    )
    assert spec["argv"][0] == str(hub_python)
