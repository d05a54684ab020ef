# Two commands matter: `make demo` (start the portal with a demo program) and `make test`.
# Both create .venv and install what they need, and are safe to rerun.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app portal
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install demo test test-fast bench verify clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(FLASK) db upgrade
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
