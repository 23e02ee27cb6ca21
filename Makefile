# The kit's commands. Each one builds its own virtual environment (.venv) from
# requirements.txt on first use, so a fresh clone needs only Python >= 3.10 and make.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    := out

.PHONY: help test portable run lint format release bench submission reference clean

help:
	@echo "make run      execute notebooks/softmax.ipynb headless into $(OUT)/ (notebook + HTML)"
	@echo "make test     lint, unit tests and nbval on the notebook (what CI runs)"
	@echo "make portable nbval strict and the unit tests under each OpenBLAS kernel (instructors)"
	@echo "make release  build the student edition into dist/student/ and dist/student.zip (instructors)"
	@echo "make submission  check everything and pack submission.zip (what students run)"
	@echo "make reference  re-execute the reference notebook in place (after editing it)"
	@echo "make bench    speed ratios against textbook numpy, and the grading bench (instructors)"
	@echo "make grade SUBMISSIONS=dir  grade every submission zip into grading/ (instructors)"
	@echo "make gradescope  pack dist/gradescope.zip, Gradescope's autograder (instructors)"
	@echo "make clean    remove $(VENV), $(OUT)/ and dist/"

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is needed; found " + sys.version.split()[0] + ". Run make PYTHON=python3.X")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# The unit tests include tests/test_portability.py, which runs nbval strict once more with
# another OpenBLAS kernel; the run below keeps the user's own kernel. They run in parallel,
# one worker per usable CPU (pytest-xdist; tests/conftest.py counts the CPUs), each test
# file on one worker, so a file's tests keep their order and share its module fixtures.
# `.venv/bin/python -m pytest` alone runs them one at a time.
test: lint
	$(PY) -m pytest -n auto --dist loadfile
	@# nbval strict on the reference notebook, on the bundled data even where CIFAR-10 has
	@# been downloaded. The font cache is built first: building it writes a note to stderr,
	@# which nbval would count against the first plotting cell.
	$(PY) -c "import matplotlib.font_manager"
	CS231N_DATASET=fashion-mnist $(PY) -m pytest --nbval notebooks/softmax.ipynb \
		--nbval-sanitize-with tests/nbval_sanitize.cfg

# nbval strict under each OpenBLAS kernel the CPU runs, five times each, the unit tests
# under each, and references re-executed under one kernel checked under another. Kernels
# the CPU cannot run are skipped, each with its reason (pytest -ra lists them).
portable: $(STAMP)
	$(PY) -c "import matplotlib.font_manager"
	CS231N_PORTABLE=1 $(PY) -m pytest tests/test_portability.py -v

run: $(STAMP)
	@mkdir -p $(OUT)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute \
		--output-dir $(OUT) --output softmax.ipynb notebooks/softmax.ipynb
	$(VENV)/bin/jupyter nbconvert --to html --output-dir $(OUT) $(OUT)/softmax.ipynb
	@echo "executed notebook: $(OUT)/softmax.ipynb"
	@echo "HTML export:       $(OUT)/softmax.html"

release: $(STAMP)
	$(PY) -m tools.release --dist dist

submission: $(STAMP)
	MPLBACKEND=Agg $(PY) -m cs231n.submission

reference: $(STAMP)
	$(PY) tools/refresh_reference.py

bench: $(STAMP)
	$(PY) tools/bench.py --docs docs/speed.md
	$(PY) -m tools.grade.bench --docs docs/speed.md

clean:
	rm -rf $(VENV) $(OUT) dist

# Grading (instructors; see "Grading" in README.md). OUT defaults to grading/ here, not
# out/: `make grade SUBMISSIONS=dir [OUT=grading] [JOBS=2] [STUDENT=id] [MANUAL=file] [ROSTER=file]`.
.PHONY: grade gradescope
GRADE_OUT = $(if $(filter command line,$(origin OUT)),$(OUT),grading)

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir [OUT=grading] [JOBS=2] [STUDENT=id] [MANUAL=file] [ROSTER=file]" >&2; exit 2; }
	$(PY) -m tools.grade batch --submissions "$(SUBMISSIONS)" --out "$(GRADE_OUT)" --jobs "$(or $(JOBS),2)" \
		$(if $(STUDENT),--student "$(STUDENT)") $(if $(MANUAL),--manual "$(MANUAL)") \
		$(if $(ROSTER),--roster "$(ROSTER)")

gradescope: $(STAMP)
	$(PY) -m tools.grade.gradescope_pack --dist dist
