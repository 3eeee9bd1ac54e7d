# entra-janitor: `make demo` runs the nightly job against the bundled tenant simulator; `make test` runs
# the tests. Both build .venv (Python 3.13) and the local test tools from pinned files on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON313 := $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13' | tail -n1) pyenv which python3.13 2>/dev/null)

.PHONY: demo test typecheck lint bench clean chromium

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found (install it, or put it on PATH)"; exit 2; }
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

tools/node_modules/.installed: tools/package.json
	cd tools && npm install --no-audit --no-fund --silent
	@touch $@

# checkov scans infra/*.bicep in the tests; its own venv keeps its dependencies away from the app's pins.
tools/checkov/.installed: tools/requirements-checkov.txt
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found (install it, or put it on PATH)"; exit 2; }
	@test -x tools/checkov/bin/python || $(PYTHON313) -m venv tools/checkov
	tools/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
	@touch $@

# Azure's management SDKs: their resource models check every property name in infra/**/*.bicep in the tests
# (tests/infra/test_azmodels.py); like checkov, their own venv keeps them away from the app's pins.
tools/azmodels/.installed: tools/requirements-azmodels.txt
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found (install it, or put it on PATH)"; exit 2; }
	@test -x tools/azmodels/bin/python || $(PYTHON313) -m venv tools/azmodels
	tools/azmodels/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-azmodels.txt
	@touch $@

# The Function App's own environment: requirements.txt and nothing else, as Azure installs it. The tests index
# the deployment package (what .funcignore lets through) in it, so a local tool that slipped into the app fails.
tools/funcapp/.installed: requirements.txt
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found (install it, or put it on PATH)"; exit 2; }
	@test -x tools/funcapp/bin/python || $(PYTHON313) -m venv tools/funcapp
	tools/funcapp/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# Headless Chromium renders the audit report in the tests; installed from Debian only when none is found.
chromium:
	@if command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null; \
	else echo "error: no headless Chromium; install Debian chromium-headless-shell (or chromium) as root"; exit 2; fi

demo: $(VENV)/.installed
	$(VENV)/bin/janitor demo

# Strict typing of the app (shared/, functions/, function_app.py; [tool.pyright] in pyproject.toml): a type error fails the build.
typecheck: $(VENV)/.installed
	$(PY) -m pyright

test: typecheck $(VENV)/.installed tools/node_modules/.installed chromium tools/checkov/.installed tools/azmodels/.installed \
		tools/funcapp/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) tools/node_modules tools/checkov tools/azmodels tools/funcapp .janitor .pytest_cache
