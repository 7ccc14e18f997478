# One command to run the portal, one to test it. Every target sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: setup run test lint bench clean

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

run: setup
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	$(FLASK) serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

# Rewrites bench/RESULTS.md with this machine's figures.
bench: setup
	printf '# Benchmark results\n\nMeasured on %s. Ratios travel between machines; absolute numbers do not.\n\n' "$$(nproc) cores, $$(uname -m)" > bench/RESULTS.md
	$(BIN)/python -m bench.thumbnails --write bench/RESULTS.md
	command -v wrk >/dev/null || apt-get install -y -qq wrk
	$(BIN)/python -m bench.poll --write bench/RESULTS.md

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules static/vendor
