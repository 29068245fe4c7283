# CloudGuard developer entry points. Needs only python3 (3.11) on PATH: uv is
# installed into .tools/ on first use when it is not already on PATH.

UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export PATH := $(CURDIR)/.tools/bin:$(PATH)
RUN := $(UV) run --frozen

.PHONY: demo test lint format check bench sync clean

demo: sync ## Run the whole production path locally on embedded stand-ins
	$(RUN) cloudguard demo

test: sync ## Run the test suite
	$(RUN) pytest

lint: sync ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: sync
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

check: lint test

sync: $(UV)
	$(UV) sync --frozen --python 3.11

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv==$(UV_VERSION)

clean:
	rm -rf .tools .venv .pytest_cache .ruff_cache .cloudguard
