VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Terraform cannot download providers on these machines: use the local mirror where there is one.
TF_RELEASE_TEST_PLUGIN_DIR ?= $(wildcard /opt/tf-plugins)
# Most of a test waits on a subprocess (moto, Terraform, the console script): two workers halve the wall time.
TEST_WORKERS ?= 2
export TF_RELEASE_TEST_PLUGIN_DIR

.PHONY: install test lint format bench demo board-screenshot clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy tf_release

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal

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
