# casemgr: `make run` starts the app with demo data; `make test` runs every test.
# Each target sets up what it needs, idempotently, on a fresh Debian machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := casemgr/static/vendor/.built
MODELER := casemgr/static/build/modeler/.built
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := casemgr

.PHONY: setup run test integration lint bench bench-pg bench-load bench-timers system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

# Front-end bundles (bpmn-js, properties panel, dmn-js, Chart.js) from npm into the
# git-ignored static/vendor folder; rebuilt when the lock or the script changes.
$(ASSETS): package.json package-lock.json scripts/build-assets.sh
	bash scripts/build-assets.sh
	touch $(ASSETS)

$(MODELER): $(ASSETS) scripts/build-modeler.sh $(wildcard casemgr/static/src/modeler/*)
	bash scripts/build-modeler.sh
	touch $(MODELER)

setup: $(STAMP) $(ASSETS) $(MODELER)

system-deps:
	bash scripts/system-deps.sh

run: setup
	$(BIN)/flask init-db
	$(BIN)/flask demo
	@echo ""
	@echo "casemgr is starting on http://$(HOST):$(PORT)/ with its embedded Celery worker and beat"
	@echo "(kombu's SQLAlchemy transport on instance/celery-broker.sqlite: no server; Ctrl-C stops both)"
	CASEMGR_EMBEDDED_WORKER=1 $(BIN)/flask run --host $(HOST) --port $(PORT)

test: setup system-deps
	$(BIN)/ruff check casemgr tests bench
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

# Only the integration suite, against a throw-away PostgreSQL and Redis that .ci/run starts
# (and installs from Debian when missing; needs root or sudo). `make test` runs it too when
# TEST_POSTGRES_URL and TEST_REDIS_URL are set, as in CI.
integration: setup
	bash .ci/run $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/integration

lint: setup
	$(BIN)/ruff check casemgr tests bench
	$(BIN)/ruff format --check casemgr tests bench

# Every benchmark; the PostgreSQL/Redis ones skip unless BENCH_ or TEST_ URLs are set.
bench: setup
	$(BIN)/python -m bench

# Every benchmark with a throw-away PostgreSQL and Redis (durable settings, fsync on).
bench-pg: setup
	CI_PG_DURABLE=1 bash .ci/run $(BIN)/python -m bench

# The load test alone: gunicorn (4 workers), Celery, 50 users; LOAD_SECONDS=20 for a short try.
LOAD_SECONDS ?= 120
bench-load: setup
	CI_PG_DURABLE=1 bash .ci/run $(BIN)/python -m bench.load --seconds $(LOAD_SECONDS)

# Due timers drained by 1, 2 and 4 Celery workers on PostgreSQL (durable settings, fsync on).
bench-timers: setup
	CI_PG_DURABLE=1 bash .ci/run $(BIN)/python -m bench.timers

clean:
	rm -rf $(VENV) instance/casemgr.db
