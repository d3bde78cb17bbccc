# The two commands of the README: `make run` and `make test`. Both set everything up on a fresh
# machine (a venv in .venv with the pinned dependencies), so CI runs them on a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled

.PHONY: run test test-fast test-browser chromium lint typecheck package bench chaos soak clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .  # the project itself: .venv/bin/bss (docs/cli.md)
	touch $(STAMP)

venv: $(STAMP)

## Start the local platform: moto server, tables, API on 127.0.0.1:$${PORT:-8000}, demo data.
## Its state is kept between runs in .local/ (BSS_LOCAL_DIR=<dir> elsewhere); `make run RESET=1`
## starts afresh with a new demo (docs/local-platform.md, "State between runs").
run: $(STAMP)
	$(PY) -m local.platform

## Every test: lint, types, unit, integration, API, end to end; in JOBS processes (pytest-xdist,
## one per core by default), a test file per process at a time (a file's fixtures are built once),
## the longest files first (SLOW_FILES of tests/conftest.py: --no-loadscope-reorder keeps that
## order; xdist's default would order files by their number of tests, leaving the long
## single-test files to the end).
JOBS ?= auto
XDIST := -n $(JOBS) --dist loadfile --no-loadscope-reorder
test: $(STAMP) lint typecheck chromium
	$(PY) -m pytest $(XDIST)

## The browser tests alone (tests/browser): a real headless Chromium, driven by Playwright,
## against the local platform; screenshots in build/screenshots/.
test-browser: $(STAMP) chromium
	$(PY) -m pytest tests/browser

## The browser the browser tests drive: Debian's chromium (Playwright's own builds are never
## downloaded), installed by apt when missing (root, or sudo). BSS_CHROMIUM=<path> drives another.
BSS_CHROMIUM ?= /usr/bin/chromium
export BSS_CHROMIUM
chromium:
	@if [ -x "$(BSS_CHROMIUM)" ]; then exit 0; fi; \
	if [ "$(BSS_CHROMIUM)" != /usr/bin/chromium ]; then \
	  echo "BSS_CHROMIUM=$(BSS_CHROMIUM) is not an executable" >&2; exit 1; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "chromium is missing: apt-get install chromium needs root or sudo" >&2; exit 1; fi; \
	echo "installing Debian's chromium for the browser tests"; \
	$$sudo apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

## Quick feedback while coding: the unit and API tests only (no lint, no end to end).
test-fast: $(STAMP)
	$(PY) -m pytest $(XDIST) tests/unit tests/api

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## The deployment package: chalice package + merge template, bytecode, cfn-lint, SAM translation.
package: $(STAMP)
	$(PY) -m infra.package

## Benchmarks (not tests): ratios and DynamoDB request counts. The billing run at 10,000 and
## 100,000 subscriptions (issue 5) takes ~15 min and 3 GB on 2 cores; a quick look:
## `make bench BILLING_SUBS="1000 10000"` (~1.5 min).
BILLING_SUBS ?= 10000 100000
## Reconciliation (R33) at 10,000 and 100,000 subscriptions in one child (~RECONCILIATION_SUBS).
RECONCILIATION_SUBS ?= 10000 100000
bench: $(STAMP)
	$(PY) -m bench import_cost backorder propagation documents storefront
	$(PY) -m bench billing --subs $(BILLING_SUBS)
	$(PY) -m bench reconciliation --subs $(RECONCILIATION_SUBS)

## The model-based back-ordering convergence test at length: ≥ 2,000 examples (half an hour).
chaos: $(STAMP)
	HYPOTHESIS_PROFILE=chaos $(PY) -m pytest tests/integration/test_backorder_convergence.py

## Soak the local platform (issue 11): CLIENTS storefront clients for SECONDS seconds against a
## fresh `python -m local.platform`, then the back-ordering invariants checked over HTTP
## (docs/local-platform.md, "Soak"). `make soak CLIENTS=50 SECONDS=60`.
CLIENTS ?= 20
SECONDS ?= 120
soak: $(STAMP)
	$(PY) -m local.soak --clients $(CLIENTS) --seconds $(SECONDS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
