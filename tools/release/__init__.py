"""Release builder: the student edition of this kit, from the reference solution.

Run ``make release`` (or ``python -m tools.release``) to write ``dist/student/`` and
``dist/student.zip``. The pipeline is in :func:`tools.release.build.build_edition`:

1. ``select_files``         copy what is on the allow-list ``SHIPPED`` (nothing else)
2. ``stub_python``          marked blocks in cs231n/ -> ``raise NotImplementedError(task)``
3. ``stub_solution_cells``  notebook cells tagged ``solution`` -> TODO comment + raise
4. ``blank_answer_cells``   markdown cells tagged ``answer`` -> "Your answer" blank
5. ``clear_outputs``        no outputs, execution counts or timings
6. ``add_overlay``          the student README.md and Makefile from ``student/``
7. ``check_size``           refuse an edition bigger than code plus the bundled sample
8. ``check_no_leaks``       refuse an edition in which a solution line appears

Stub texts live in :mod:`tools.release.stubs`.
"""

from .build import build_edition, main
from .pysource import ReleaseError

__all__ = ["ReleaseError", "build_edition", "main"]
