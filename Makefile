# One documented way to run each thing. Needs only python3 (3.11+) and node/npm (20+).
SHELL := /bin/bash
PY := .venv/bin/python
UV := .venv/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := .venv
export UV_LINK_MODE := copy

.PHONY: install dev demo test test-unit lint fmt contracts migrate worker listener api clean bench chaos soak

install: .venv/.synced node_modules/.installed ## Python deps (uv.lock) and npm tools (package-lock.json)

.venv/bin/python:
	python3 -m venv .venv

$(UV): .venv/bin/python
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ with npm (Debian: apt-get install nodejs npm), then re-run" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: install ## ruff + mypy, as CI runs them
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

fmt: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint ## the whole suite against real Postgres, Temporal and anvil started by the fixtures
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest -m "not integration"

dev: install ## the whole system on embedded defaults; Ctrl-C stops everything
	$(PY) -m bookme dev

demo: install ## five real bookings against `make dev` (or a private stack); exits 1 if any is off
	$(PY) -m bookme demo

bench: install ## lifecycle, event latency, catch-up and API figures beside their ceilings -> bench/results/
	$(PY) -m bench

chaos: install ## mixed workload under injected faults, then every invariant checked -> bench/results/
	$(PY) -m bench.chaos

SOAK_MINUTES ?= 60
SOAK_RATE ?= 1
soak: install ## an hour of steady traffic (SOAK_RATE/s) under faults, RSS/connections/lag watched -> bench/results/
	$(PY) -m bench.chaos --soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

contracts: node_modules/.installed ## recompile contracts/*.sol into the committed chain/artifacts
	node contracts/build.mjs

migrate: install
	$(PY) -m bookme migrate

clean:
	rm -rf .venv node_modules .pytest_cache .mypy_cache .ruff_cache
