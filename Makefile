# Two entry points, both self-contained on a fresh machine (README):
#   make demo  - create .venv, install OpenDIP, generate the demo region, run the pipeline
#   make test  - create .venv with test tools, lint, format-check and run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo-data

.PHONY: demo test lint clean mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $(VENV)/.installed $@

# scripts/report-deps.sh installs the Chinese fonts and Pango the PDF report needs (Debian).
demo: $(VENV)/.installed
	bash scripts/report-deps.sh
	$(BIN)/opendip demo --out $(DEMO_DIR)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

# PostgreSQL (store tests) and Debian's chromium (browser test) come from Debian's packages:
# scripts/test-services.sh installs what is missing and starts a throw-away cluster.
# pytest exits 5 when it collected no test: that must fail, never pass silently.
test: lint
	bash scripts/report-deps.sh
	bash scripts/test-services.sh
	set -a; . ./.test-services.env; set +a; \
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest; rc=$$?; \
	bash scripts/test-services.sh stop; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

# Mutation testing (mutmut) of the money, QC, grouping and access modules, each group with its
# own test subset (docs/testing.md: groups, figures, survivors). Slow: not part of `make test`.
# One group or a few: make mutation GROUPS="money scoring"
GROUPS ?=
mutation: $(VENV)/.installed-dev
	$(BIN)/python scripts/mutation.py $(GROUPS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache .mutation
