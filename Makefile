# entra-janitor: `make demo` runs the nightly job against the bundled tenant simulator; `make test` runs
# the tests. Both build .venv (Python 3.13) and the local test tools from pinned files on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON313 := $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13' | tail -n1) pyenv which python3.13 2>/dev/null)

.PHONY: demo test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found (install it, or put it on PATH)"; exit 2; }
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

tools/node_modules/.installed: tools/package.json
	cd tools && npm install --no-audit --no-fund --silent
	@touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/janitor demo

test: $(VENV)/.installed tools/node_modules/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) tools/node_modules .janitor .pytest_cache
