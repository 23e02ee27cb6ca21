"""Built test environments (a venv of Colab's versions, a stand-in hub Python), kept
between runs and between clones of the kit in a cache folder of this machine's user.

Each is built once per key (what it holds) into a folder of its own, under a temporary
name renamed into place when complete, so two test runs at once never use a half-built
one. ``CS231N_TEST_CACHE`` chooses the cache folder (default ``~/.cache/cs231n-kit-tests``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

DONE = ".complete"


def cache_root() -> Path:
    default = Path.home() / ".cache" / "cs231n-kit-tests"
    return Path(os.environ.get("CS231N_TEST_CACHE", default))


def built(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The folder ``build(folder)`` fills for ``key``: from the cache, or built now.

    ``build`` may call pytest.skip or fail; nothing is kept then.
    """
    folder = cache_root() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (folder / DONE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build(staging)
        (staging / DONE).write_text(key)
        try:
            staging.rename(folder)
        except OSError:  # another run finished first: use its build
            if not (folder / DONE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
