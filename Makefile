# ketch — the two commands a newcomer needs: `make up` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?=
PORT ?= 6443
# e.g. UP_FLAGS="--proxy --cluster-dns 0.0.0.0:10053" to run the service proxy (programs this host's nftables) and DNS
UP_FLAGS ?=
STAMP := $(VENV)/.installed

.PHONY: up test deps lint bench clean

$(STAMP): pyproject.toml
	@bash scripts/setup.sh
	@touch $(STAMP)

deps: $(STAMP)

## Bring a cluster up (foreground; Ctrl-C stops it). Writes a kubeconfig into the data dir.
up: $(STAMP)
	$(BIN)/ketch up $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --port $(PORT) $(UP_FLAGS)

## Run the whole test suite (installs what it needs first).
test: $(STAMP)
	$(BIN)/ruff check ketch tests bench
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check ketch tests bench

bench: $(STAMP)
	$(BIN)/python bench/api_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
