"""``make gradescope``: pack the grader as Gradescope's autograder zip.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` from there once
to build the image, and runs ``run_autograder`` for each submission. Both sit at the top
of the zip, beside the reference checkout's files that the grader needs (it builds the
clean student edition from them at run time). The zip holds the solutions: upload it to
Gradescope only, never share it.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from tools.release.build import SHIPPED, File, select_files

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "gradescope"
PATTERNS = (*SHIPPED, "tools/**/*", "README.md", "Makefile")


def _files(root: Path = REPO) -> dict[str, File]:
    """The checkout's files the grader needs: git-tracked only, no links (as the release)."""
    return select_files(root, PATTERNS)


def pack(dest: Path, root: Path = REPO) -> Path:
    """Write the autograder zip to ``dest`` (same files, same bytes); return ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    entries = _files(root)
    for script in ("setup.sh", "run_autograder"):
        entries[script] = File((SCRIPTS / script).read_bytes(), executable=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, file in sorted(entries.items()):
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if file.executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, file.data)
    tmp.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.grade.gradescope_pack")
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    archive = pack(args.dist / "gradescope.zip")
    with zipfile.ZipFile(archive) as zf:
        count = len(zf.namelist())
    print(f"wrote {archive} ({count} files): upload it as the autograder; it holds solutions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
