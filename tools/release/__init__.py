"""Release builder: the student edition of this kit, from the reference solution.

Run ``make release`` (or ``python -m tools.release``) to write ``dist/student/`` and
``dist/student.zip``. It builds from a git checkout: only files that git tracks can
ship (untracked notes or keys never do), a shipped file that is a symbolic link (or sits
in a linked folder) fails the build, and the banner names the commit, with ``-dirty``
and the files concerned when shipped files (or the builder) differ from it. Outside a
git checkout (an unpacked tarball, say) it refuses: build from a clone, or pass
``--no-git`` (``build_edition(src, git=False)``) to take every matching file on disk,
which is right only for a copy trusted as a whole, such as an autograder's.

The pipeline is in :func:`tools.release.build.build_edition`:

1. ``select_files``         tracked files on the allow-list ``SHIPPED`` (nothing else)
2. ``stub_python``          marked blocks in cs231n/ -> ``raise NotImplementedError(task)``
3. ``stub_solution_cells``  notebook cells tagged ``solution`` -> TODO comment + raise
4. ``blank_answer_cells``   markdown cells tagged ``answer`` -> "Your answer" blank
5. ``clear_outputs``        no outputs, execution counts or timings
   ``strip_metadata``       only kernelspec, language_info and cell tags; no attachments
6. ``record_release``       notebooks/.release.json: each released cell's id, type, tags
                            and source, which ``make submission`` checks the work against
7. ``add_overlay``          the student README.md and Makefile from ``student/``
8. ``check_size``           refuse an edition bigger than code plus the bundled sample
9. ``check_no_leaks``       refuse an edition in which a solution line appears

A notebook that is not valid JSON, or has a cell without a type, source, list of tags or
unique id, fails the build with the notebook and the cell named.

Stub texts live in :mod:`tools.release.stubs`.
"""

from .build import build_edition, main
from .pysource import ReleaseError

__all__ = ["ReleaseError", "build_edition", "main"]
