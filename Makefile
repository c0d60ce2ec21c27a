# The README's two commands: `make book` and `make test`. Each sets up .venv first.
PYTHON ?= python3
# torch first, pinned to the build this machine installs locally (any other spec pulls CUDA wheels)
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup book test lint lab grade set-repo clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[book,grade,test]"
	# d2l 1.0.3 pins old numpy/matplotlib/pandas: install it alone, for the parity tests only
	$(BIN)/python -m pip install --quiet --no-deps d2l==1.0.3
	# the notebooks' kernel is this venv's Python
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (attnkit)"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going

# ruff: pyflakes, pycodestyle (lines <= 100), import order, bugbear (settings in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check attnkit tests scripts

# lint first (seconds), then three workers on the two cores: the book build, the hostile batch
# and the grading round trips side by side (much of grading is waiting on kernels and limits:
# with two workers the cores were busy about 60% of the run)
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 3 --dist loadgroup --no-loadscope-reorder

lab: $(STAMP)
	$(BIN)/jupyter lab exercises

# make grade ASSIGNMENT=ch01-soft-lookup SUBMISSIONS=path/to/folder [JOBS=2]: see book/instructor-guide.md
grade: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m attnkit.grading grade "$(ASSIGNMENT)" "$(SUBMISSIONS)" --jobs $(or $(JOBS),2)

# A fork points the book, notebooks and Colab links at itself (see README, "Forks"):
#   make set-repo URL=https://github.com/you/attention-course [BRANCH=main]
# rewrites _config.yml, README, book/ and solutions/, then regenerates exercises/ with nbgrader.
set-repo: $(STAMP)
	@test -n "$(URL)" || { echo "usage: make set-repo URL=https://github.com/OWNER/NAME [BRANCH=main]"; exit 1; }
	$(BIN)/python scripts/set_repo.py "$(URL)" $(if $(BRANCH),--branch "$(BRANCH)")
	had_db=$$(test -e gradebook.db && echo yes); status=0; \
	for dir in solutions/ch*/; do \
		PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nbgrader generate_assignment "$$(basename $$dir)" --force || { status=1; break; }; \
	done; \
	test -n "$$had_db" || rm -f gradebook.db; exit $$status

clean:
	rm -rf _build
