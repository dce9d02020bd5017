# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install the project into it, once: the stamp file is
# keyed on pyproject.toml's hash, so nothing is reinstalled until pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup system-deps demo lint test test-fast test-slow test-all bench docs docs-check clean

setup: $(STAMP) system-deps

# Graphviz's dot lays out `vizcli shapes --plot graph.svg`: Debian's package, installed once if missing
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
system-deps:
	@command -v dot >/dev/null 2>&1 || { echo "installing Graphviz (dot) from the system packages"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends graphviz >/dev/null 2>&1 || \
	  { DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends graphviz >/dev/null 2>&1; } || \
	  echo "warning: could not install Graphviz; vizcli shapes --plot and its tests need it (apt install graphviz)"; }

$(STAMP):  # the name carries pyproject.toml's hash: a changed file means a new stamp
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,ray,docs]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP) system-deps
	$(BIN)/vizcli shapes examples/chelsea.png --depth 2

lint: $(STAMP)
	$(BIN)/ruff check vizcli tests benchmarks
	$(BIN)/mypy

# Tiers (markers in pyproject.toml): test-fast skips slow, ray and process tests; test (the README's command)
# skips only the slow every-model sweep; test-slow is that sweep; test-all is everything.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m "not slow" --durations=25

test-fast: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m "not slow and not ray and not process" --durations=10

test-slow: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m slow --durations=10

test-all: $(STAMP) system-deps
	$(BIN)/python -m pytest -q --durations=25

# Documentation (docs/index.md, "How these pages are made"): every console block of README.md and docs/*.md is a cog
# block that docs/_cog.py runs for real. `docs` rewrites them; `docs-check` fails when any differs from what the
# program prints now (cog --check), then builds the site with mkdocs --strict (broken links, pages missing from nav;
# not --quiet: mkdocs then drops the warnings that --strict counts).
docs: $(STAMP) system-deps
	$(BIN)/python docs/_cog.py

docs-check: $(STAMP) system-deps
	$(BIN)/python docs/_cog.py --check
	site=$$(mktemp -d) && trap 'rm -rf "$$site"' EXIT && NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir "$$site"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[bench,ray]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
