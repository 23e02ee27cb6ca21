"""Grading for instructors: hidden tests over sandboxed submissions (``make grade``).

Never shipped to students (tools/ is not on the release allow-list). The parts:

- :mod:`tools.grade.sandbox` runs untrusted code with time, memory and network limits;
- :mod:`tools.grade.unpack` takes a submission zip apart, refusing what is unsafe;
- :mod:`tools.grade.driver` grades a folder of submissions and writes the reports;
- :mod:`tools.grade.hidden` and :mod:`tools.grade.notebook` hold the hidden tests.
"""
