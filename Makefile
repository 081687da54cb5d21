# server402: `make run` starts everything, `make test` runs every test. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true
export NO_PROXY := 127.0.0.1,localhost,::1
export no_proxy := 127.0.0.1,localhost,::1

.PHONY: run test lint typecheck pytest catalog lock clean browser bench conformance

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "server402 needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
# (the project itself, editable, for the server402 command .venv/bin/server402; pip builds it with a setuptools
# from the registry, the venv's own being too old for pyproject's license field; -qq hides its build warning)
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m scripts.run

test: $(STAMP) browser lint pytest

lint: $(STAMP)
	$(BIN)/ruff check api workers shared client sandbox scripts tests
	$(BIN)/ruff format --check api workers shared client sandbox scripts tests
	$(BIN)/mypy api workers shared client

# The page tests drive Debian's Chromium with Playwright (never `playwright install`: no browser downloads).
# Installed once, as root or through sudo; a CJK font so Chinese renders in screenshots.
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
		else echo "make test needs Debian's chromium: apt-get install chromium fonts-wqy-microhei" >&2; exit 1; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei; }

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks, not tests (they assert no timings): each starts its own processes on free loopback ports, prints its
# tables and writes bench/results/<name>.json and .md; bench.summary ends with the table of the performance goals.
# About 8 minutes on 2 cores; quiet cores give steadier figures.
bench: $(STAMP)
	$(BIN)/python -m bench.request_rate
	$(BIN)/python -m bench.added_latency
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.rate_limit
	$(BIN)/python -m bench.redis_cost
	$(BIN)/python -m bench.batch_isolation --items 10000
	$(BIN)/python -m bench.search_cost
	$(BIN)/python -m bench.upstream_transport
	$(BIN)/python -m bench.summary

# Regenerate shared/data/tools.json from the pinned SDK (a test fails when it is stale).
catalog: $(STAMP)
	$(BIN)/python -m scripts.gen_catalog

# Re-pin every dependency after editing pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras --extra dev --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

# The official MCP conformance suite (tests/conformance, npm ci'd from its lock) against POST /mcp of a server402 on free
# loopback ports; fails on a scenario tests/conformance/expected-failures.yml does not list. Results in .data/conformance.
conformance: $(STAMP)
	$(BIN)/python -m scripts.conformance
