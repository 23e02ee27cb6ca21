"""Grading for instructors: hidden tests over sandboxed submissions (``make grade``).

Never shipped to students (tools/ is not on the release allow-list). The parts:

- :mod:`tools.grade.sandbox` runs untrusted code with time, memory and network limits;
- :mod:`tools.grade.unpack` takes a submission zip apart, refusing what is unsafe;
- :mod:`tools.grade.driver` grades a folder of submissions and writes the reports;
- the hidden code tests, one module per step: :mod:`tools.grade.rubric` (the items),
  :mod:`tools.grade.cases` (the hidden inputs), :mod:`tools.grade.runner` (the sandboxed
  child and what comes back from it), :mod:`tools.grade.oracle` (the answers) and
  :mod:`tools.grade.judging` (the verdicts, from ``cs231n/_properties.py``);
- :mod:`tools.grade.notebook` re-executes the notebook;
- :mod:`tools.grade.status` names how a run ended, for all of them.
"""
