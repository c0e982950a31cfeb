# Two commands do all set-up: `make run` serves Taskwire, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
CHROMIUM_PATH ?= /usr/bin/chromium
REDIS_SERVER ?= /usr/bin/redis-server

UI_SOURCES := $(shell find ui/src ui/index.html ui/vite.config.ts ui/tsconfig.json -type f 2>/dev/null)

.PHONY: run test lint typecheck pytest ui-build ui-test e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps re-run the install only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[bench]'
	touch $@ $(VENV)/.installed

# The web UI: installed exactly as the lock file says, rebuilt when a source is newer than the build.
ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	touch $@

ui/dist/index.html: ui/node_modules/.package-lock.json $(UI_SOURCES)
	cd ui && npm run build

# `make run` serves the API without Node too: `/` then says how to build the UI.
ui-build:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory ui/dist/index.html; \
	else echo "make: npm not found; serving the API without the web UI (it needs Node.js >= 20)"; fi

# Uvicorn as api/server.py explains: a deadline for request heads, no WebSocket, a cap on
# connections; and no proxy trusted unless FORWARDED_ALLOW_IPS names it.
FORWARDED_ALLOW_IPS ?=
TASKWIRE_MAX_CONNECTIONS ?= 1000

run: $(VENV)/.installed ui-build
	$(BIN)/uvicorn asgi:app --host $(HOST) --port $(PORT) --no-access-log \
		--http api.server:HeadTimeoutProtocol --ws none \
		--limit-concurrency $(TASKWIRE_MAX_CONNECTIONS) --forwarded-allow-ips '$(FORWARDED_ALLOW_IPS)'

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The Redis backend's tests run against a real redis-server, which they start themselves.
$(REDIS_SERVER):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server

pytest: $(VENV)/.installed-dev | $(REDIS_SERVER)
	$(BIN)/pytest --cov --cov-report=term-missing

ui-test: ui/node_modules/.package-lock.json
	cd ui && npm run typecheck && npm test

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
$(CHROMIUM_PATH):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

e2e: $(VENV)/.installed ui/dist/index.html | $(CHROMIUM_PATH)
	cd ui && CHROMIUM_PATH=$(CHROMIUM_PATH) npx playwright test

test: lint typecheck pytest ui-test e2e

# Benchmarks, by hand: about ten minutes; rewrites the table in bench/RESULTS.md.
# The Redis backend's are measured against a real redis-server, which they start themselves.
bench: $(VENV)/.installed-bench | $(REDIS_SERVER)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -c 'import redis' 2>/dev/null || $(BIN)/pip install -q -e '.[bench,redis]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov *.egg-info
	rm -rf ui/node_modules ui/dist ui/test-results
