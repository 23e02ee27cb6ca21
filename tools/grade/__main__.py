"""``python -m tools.grade batch ...`` (make grade) and ``... gradescope`` (run_autograder)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

from . import driver, sandbox


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _options(args: argparse.Namespace, **overrides) -> driver.Options:
    values = {
        "submissions": args.submissions,
        "out": args.out,
        "jobs": args.jobs,
        "student": args.student or None,
        "manual": args.manual,
        "roster": getattr(args, "roster", None),
        "cpu": args.cpu,
        "notebook_cpu": args.notebook_cpu,
        "memory": int(args.memory_gb * sandbox.GB),
        "disk": int(args.disk_mb * sandbox.MB),
        "max_wall": args.max_wall,
        "progress": not args.no_progress,
        **_code_tests(args.code_tests),
        "notebook_tests": args.notebook_tests,
    }
    values.update(overrides)
    return driver.Options(**values)


def _code_tests(module: str | None) -> dict:
    """The driver's code tests: the real ones, or a stand-in module's (for tests)."""
    if module is None:
        return {}
    found = importlib.import_module(module)
    return {"grade_code": found.grade_code, "load_rubric": found.load_rubric}


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip ``folder`` as it is; symlinks stay symlinks, so that unpacking refuses them."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                info = zipfile.ZipInfo(rel)
                info.external_attr = (0o120777) << 16
                zf.writestr(info, os.readlink(path))
            elif path.is_file():
                zf.write(path, rel)
    return archive


def gradescope(root: Path, args: argparse.Namespace) -> int:
    """Grade ``root/submission`` into ``root/results/results.json`` (Gradescope's layout)."""
    submission = root / "submission"
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cs231n-gradescope-") as tmp:
        inbox = Path(tmp) / "in"
        inbox.mkdir()
        archive = inbox / "submission.zip"
        zips = sorted(submission.glob("*.zip")) if submission.is_dir() else []
        if len(zips) == 1 and not (submission / "cs231n").exists():
            shutil.copyfile(zips[0], archive)
        elif submission.is_dir():
            zip_folder(submission, archive)
        else:
            archive.write_bytes(b"")  # nothing uploaded: graded as invalid
        options = _options(args, submissions=inbox, out=Path(tmp) / "out", jobs=1, student=None)
        try:
            row = driver.grade_one(archive, options, driver.build_edition(Path(tmp) / "edition"))
        except Exception:  # a grader bug: say so in results.json rather than show nothing
            traceback.print_exc()
            failed = {
                "score": 0,
                "output": "The autograder itself failed on this submission; your instructor "
                "has the details. Nothing is wrong with your upload until they say so.",
                "tests": [],
            }
            (results / "results.json").write_text(json.dumps(failed, indent=2) + "\n")
            return 1
        shutil.copyfile(
            driver.student_dir(Path(tmp) / "out", "submission") / "results.json",
            results / "results.json",
        )
    print(f"gradescope: status {row['status']}; wrote {results / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.grade", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("batch", "gradescope"):
        p = sub.add_parser(name)
        p.add_argument("--cpu", type=_positive, default=60.0, help="CPU s per code-test command")
        p.add_argument(
            "--notebook-cpu",
            type=_positive,
            default=driver.Options.notebook_cpu,
            help="CPU s for the notebook's run (its wall clock is twice that)",
        )
        p.add_argument("--memory-gb", type=_positive, default=4.0, help="address space cap")
        p.add_argument("--disk-mb", type=_positive, default=512.0, help="scratch per submission")
        p.add_argument("--max-wall", type=_positive, default=None, help="cap on wall limits")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument("--jobs", type=int, default=2)
        p.add_argument("--manual", type=Path, default=None)
        p.add_argument("--student", default="")
        p.add_argument("--code-tests", default=None, help=argparse.SUPPRESS)
        p.add_argument("--notebook-tests", default="tools.grade.notebook", help=argparse.SUPPRESS)
        if name == "batch":
            p.add_argument("--submissions", type=Path, required=True)
            p.add_argument("--out", type=Path, default=Path("grading"))
            p.add_argument("--roster", type=Path, default=None, help="id,name,email/sis_id")
        else:
            p.add_argument("--root", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "gradescope":
        args.submissions = args.out = None
        root = args.root or Path(os.environ.get("GRADESCOPE_ROOT", "/autograder"))
        return gradescope(root, args)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    print(f"grade: sandbox: {sandbox.isolation().detail}", file=sys.stderr)
    print(f"grade: student code runs as {sandbox.user_line()}", file=sys.stderr)
    try:
        sandbox.check_ready()
    except sandbox.SandboxError as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    try:
        return driver.grade_batch(_options(args))
    except driver.GradingError as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
