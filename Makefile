# Two commands matter: `make demo` (start the portal with a demo program) and `make test`.
# Both create .venv and install what they need, and are safe to rerun.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app portal
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000
# The demo's witness (issue 9): a separate process with its own key and state, as a real one
# would run on the compliance officer's machine (docs/operations.md, "Witnesses").
WITNESS_PORT ?= 5001
WITNESS_DIR := instance/demo-witness
# The demo's job worker (issue 14): exports run in a separate process on the SQLite queue in
# instance/, as production runs `flask jobs worker` processes (docs/operations.md, "Background jobs").
WORKER_DIR := instance/demo-worker
DEMO_ENV = PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://$(HOST):$(PORT)} \
	PORTAL_WITNESSES="$${PORTAL_WITNESSES:-http://$(HOST):$(WITNESS_PORT) $$(cat $(WITNESS_DIR)/witness.pub)}"

.PHONY: install demo demo-reset demo-witness demo-worker test test-fast bench verify clean-demo

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
	@$(MAKE) --no-print-directory demo-witness
	@echo "==> Loading the demo program (first run: renders and archives about 40 rosters)"
	$(DEMO_ENV) $(FLASK) demo load
	@$(MAKE) --no-print-directory demo-worker
	@echo "Portal: http://$(HOST):$(PORT)/  (Ctrl-C stops it, the demo witness and the job worker)"
	$(DEMO_ENV) $(FLASK) run --host $(HOST) --port $(PORT); \
	  kill $$(cat $(WITNESS_DIR)/pid) 2>/dev/null; rm -f $(WITNESS_DIR)/pid; \
	  kill -INT $$(cat $(WORKER_DIR)/pid) 2>/dev/null; rm -f $(WORKER_DIR)/pid

# Start (or restart) the demo's job worker in the background (exports, audit files).
demo-worker: install
	@mkdir -p $(WORKER_DIR)
	@if [ -f $(WORKER_DIR)/pid ]; then kill -INT $$(cat $(WORKER_DIR)/pid) 2>/dev/null; sleep 1; fi
	@$(DEMO_ENV) nohup $(FLASK) jobs worker --threads 2 > $(WORKER_DIR)/worker.log 2>&1 & echo $$! > $(WORKER_DIR)/pid
	@sleep 1; if ! kill -0 $$(cat $(WORKER_DIR)/pid) 2>/dev/null; then \
	  echo "the demo job worker did not start; see $(WORKER_DIR)/worker.log"; cat $(WORKER_DIR)/worker.log; exit 1; fi
	@echo "Job worker: pid $$(cat $(WORKER_DIR)/pid) (log in $(WORKER_DIR)/worker.log)"

# Start (or restart) the demo witness in the background; it trusts this portal's log key.
demo-witness: install
	@mkdir -p $(WITNESS_DIR)
	@$(PY) -m audit_archive witness pubkey --key $(WITNESS_DIR)/witness.key \
	  --name demo-witness.localhost/w1 > $(WITNESS_DIR)/witness.pub
	@$(FLASK) audit pubkey > $(WITNESS_DIR)/log.pub
	@if [ -f $(WITNESS_DIR)/pid ]; then kill $$(cat $(WITNESS_DIR)/pid) 2>/dev/null; sleep 0.5; fi
	@nohup $(PY) -m audit_archive witness serve --state $(WITNESS_DIR)/state \
	  --key $(WITNESS_DIR)/witness.key --log $(WITNESS_DIR)/log.pub --host $(HOST) \
	  --port $(WITNESS_PORT) > $(WITNESS_DIR)/witness.log 2>&1 & echo $$! > $(WITNESS_DIR)/pid
	@$(PY) -c "import socket,sys,time; sys.exit(next((0 for _ in range(50) if socket.create_connection \
	  and socket.socket().connect_ex(('$(HOST)', $(WITNESS_PORT))) == 0 or time.sleep(0.1)), \
	  'the demo witness did not start; see $(WITNESS_DIR)/witness.log'))"
	@echo "Witness: http://$(HOST):$(WITNESS_PORT) key $$(cat $(WITNESS_DIR)/witness.pub) (log in $(WITNESS_DIR)/witness.log)"

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
	$(PY) bench/witness.py
	$(PY) bench/audit_file.py

# On the demo, trust the demo witness (as `make demo` does), so its cosignatures are checked
# rather than reported as "a witness not in PORTAL_WITNESSES"; elsewhere PORTAL_WITNESSES is
# the operator's own (docs/operations.md, "Witnesses").
# The demo's backfilled history carries its own signed "backfill" marker (docs/audit-format.md
# §1), so verify reports it in one summary line without loosening the late-archive limit.
verify: install
	PORTAL_WITNESSES="$${PORTAL_WITNESSES:-$$(test -f $(WITNESS_DIR)/witness.pub && echo http://$(HOST):$(WITNESS_PORT) $$(cat $(WITNESS_DIR)/witness.pub))}" \
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
