# Local entry points. `make demo` and `make test` work on a fresh machine with
# Python 3.11+; PostgreSQL is embedded when DATABASE_URL is not set.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench serve clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

node_modules/.bin/azurite-blob: package.json
	npm install --no-audit --no-fund --silent
	touch $@

demo: $(STAMP)
	$(BIN)/diamond-opus demo

test: $(STAMP) node_modules/.bin/azurite-blob
	$(BIN)/pytest

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

serve: $(STAMP)
	$(BIN)/diamond-opus serve

clean:
	rm -rf $(VENV) node_modules .pytest_cache
