# casemgr: `make run` starts the app with demo data; `make test` runs every test.
# Each target sets up what it needs, idempotently, on a fresh Debian machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := casemgr

.PHONY: setup run test lint bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

run: setup
	$(BIN)/flask init-db
	$(BIN)/flask demo
	@echo ""
	@echo "casemgr is starting on http://$(HOST):$(PORT)/ (embedded timer worker on; Ctrl-C stops)"
	CASEMGR_EMBEDDED_WORKER=1 $(BIN)/flask run --host $(HOST) --port $(PORT)

test: setup system-deps
	$(BIN)/ruff check casemgr tests bench
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check casemgr tests bench
	$(BIN)/ruff format --check casemgr tests bench

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance/casemgr.db
