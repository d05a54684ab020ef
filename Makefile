# Two commands matter: `make demo` (start the portal with a demo program) and `make test`.
# Both create .venv and install what they need, and are safe to rerun.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app portal
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install demo demo-reset test test-fast bench verify clean-demo

$(STAMP): pyproject.toml
	@echo "==> Creating the Python environment in $(VENV) and installing the portal's dependencies"
	@echo "    (first run only: a few minutes; later runs skip this step)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --progress-bar off -e '.[test]'
	touch $(STAMP)
	@echo "==> Dependencies installed"

install: $(STAMP)

demo: install
	@echo "==> Bringing the database schema up to date (instance/ unless PORTAL_DATABASE_URL is set)"
	$(FLASK) db upgrade
	@echo "==> Loading the demo program (first run: renders and archives about 40 rosters)"
	PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://$(HOST):$(PORT)} $(FLASK) demo load
	@echo "Portal: http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://$(HOST):$(PORT)} $(FLASK) run --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not e2e and not slow"

bench: install
	$(PY) bench/close_roster.py
	$(PY) bench/archive_verify.py
	$(PY) bench/archive_proofs.py
	$(PY) bench/archive_append.py
	$(PY) bench/claim_lines.py
	$(PY) bench/x12_837p.py

verify: install
	$(FLASK) audit verify

clean-demo:
	rm -rf instance

# The demo follows the clock: its four weeks of history end on the day it was loaded. This
# deletes the demo's instance data (database, archive, keys, checkpoints in instance/) and runs
# the normal `make demo`, which rebuilds it for today. Never point it at real data.
demo-reset:
	@if [ -n "$$PORTAL_DATABASE_URL" ]; then \
	  echo "PORTAL_DATABASE_URL is set: drop and recreate that database yourself, then run make demo."; exit 2; fi
	@echo "==> Deleting the demo's data in instance/ (database, archive, signing key, checkpoints)"
	rm -rf instance
	$(MAKE) demo
