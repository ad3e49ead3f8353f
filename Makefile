# The two commands: `make up` and `make test`. Both set everything up on a machine with only Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GENERATED := gen/.generated
NODE_DEPS := tests/node/node_modules/.installed
PROTOS := $(shell find protos -name '*.proto')
# The hand-written packages: the runtime, the model package, one per deployable, the CLI.
PACKAGES := protoserve_runtime protoserve_models inference_svc explain_svc worker_svc monitoring_svc gateway protoserve_cli

.PHONY: up test setup gen lint typecheck clean chromium images

up: setup
	$(BIN)/protoserve up

test: setup $(NODE_DEPS) chromium
	$(BIN)/python -m pytest

# The web page is tested in Debian's chromium (driven by Playwright; no browser is downloaded). It is
# installed here when this runs as root or with passwordless sudo; otherwise the one command to run is said.
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		elif sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium; \
		else echo "make test needs Debian's chromium for the web page test; install it with:"; \
			echo "  sudo apt-get update && sudo apt-get install -y chromium"; exit 1; fi; }

setup: $(INSTALLED) $(GENERATED)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Pinned dependencies first (runtime + dev/test), then the code generated from protos/, then the project itself.
$(INSTALLED): requirements.lock requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m protoserve_runtime.codegen
	touch $(GENERATED)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Regenerated whenever a proto changes; gen/ is output, never edited and not committed.
# The editable install is redone so that a new proto package is importable too.
$(GENERATED): $(PROTOS) protoserve_runtime/codegen.py | $(INSTALLED)
	$(BIN)/python -m protoserve_runtime.codegen
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

gen: $(GENERATED)

$(NODE_DEPS): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --silent
	touch $@

# The import contracts (pyproject.toml [tool.importlinter]) keep the packages layered and the services apart.
lint: setup
	$(BIN)/buf lint
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(PACKAGES)

# One image per service from the multi-stage Dockerfile (needs a Docker engine; not used by the tests).
images:
	for service in inference explain monitoring worker gateway; do \
		docker build --target $$service -t protoserve-$$service . || exit 1; done

clean:
	rm -rf $(VENV) gen .protoserve tests/node/node_modules
