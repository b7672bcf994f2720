# Two commands: `make run` (serve the demo on http://127.0.0.1:5000) and `make test`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test lint setup setup-dev migrate demo clean bench

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

migrate: setup
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) demo

run: demo
	$(FLASK) run --host 127.0.0.1 --port 5000

test: setup-dev
	FLASK_SKIP_DOTENV=1 $(BIN)/pytest $(PYTEST_ARGS)

# The evening-peak benchmark (bench/README.md): its own PostgreSQL database bench_peak and
# Redis db 8, dropped and recreated; about 15 minutes; not part of `make test`.
bench: setup-dev
	FLASK_SKIP_DOTENV=1 $(BIN)/python bench/peak.py $(BENCH_ARGS)

lint: setup-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
