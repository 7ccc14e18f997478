# One command to run the portal, one to test it. Every target sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: setup run test lint bench wrk clean

setup: $(VENV)/.installed static/vendor/htmx.min.js

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

# Serves the portal with the notification worker and the reply receiver (MAIL_RECEIVE_PORT,
# 2525) in one process.
run: setup
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	$(FLASK) serve --host $(HOST) --port $(PORT)

test: setup wrk
	$(BIN)/pytest $(PYTEST_ARGS)

# wrk (Debian's package) drives the benchmarks, and their small run in the test suite.
wrk:
	command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk >/dev/null)

# Rewrites bench/RESULTS.md with this machine's figures (about 10 minutes; PostgreSQL too when
# BENCH_DATABASE_URL names a database the benchmark may replace).
bench: setup wrk
	$(BIN)/python -m bench.machine > bench/RESULTS.md
	$(BIN)/python -m bench.thumbnails --write bench/RESULTS.md
	$(BIN)/python -m bench.photo_feed --write bench/RESULTS.md
	$(BIN)/python -m bench.load --write bench/RESULTS.md
	$(BIN)/python -m bench.import_csv --write bench/RESULTS.md
	if [ -n "$$BENCH_DATABASE_URL" ]; then \
		$(BIN)/python -m bench.load --database-url "$$BENCH_DATABASE_URL" --write bench/RESULTS.md; \
		$(BIN)/python -m bench.import_csv --database-url "$$BENCH_DATABASE_URL" \
			--write bench/RESULTS.md; fi
	$(BIN)/python -m bench.two_hosts --write bench/RESULTS.md

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) node_modules static/vendor
