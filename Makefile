# Reprolab. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.installed: $(UV) uv.lock pyproject.toml
	@# OpenSSL's headers for libs/fasthash's C extension (optional: without them verification uses hashlib)
	@[ -e /usr/include/openssl/sha.h ] || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libssl-dev; }
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: install
install: .venv/.installed ## Create .venv/ and install every package (uv, frozen lock)

.PHONY: up
up: install ## Run the platform on this machine (NATS, five services, SQLite); Ctrl-C stops it
	$(UV) run --frozen reprolab up

.PHONY: demo
demo: install container-deps base-image ## Set up and run the course scenario end to end on embedded defaults
	$(UV) run --frozen reprolab demo

.PHONY: container-deps
container-deps: ## Install and configure podman, buildah, runc, skopeo, docker-registry, mmdebstrap (root)
	bash scripts/container-deps.sh

.PHONY: base-image
base-image: container-deps ## Build the offline Debian bookworm + python3 base image with mmdebstrap
	bash scripts/base-image.sh

.PHONY: images
images: install container-deps base-image ## Build the platform images (services, build-job, fetcher) reproducibly; CHECK=1 builds each twice and compares digests
	bash scripts/images.sh
	@if [ "$(CHECK)" = 1 ]; then bash scripts/images-check.sh; fi

.PHONY: test-deps
test-deps: container-deps base-image mlserver-env ## Install what the tests need beyond Python (PostgreSQL, containers; root)
	bash scripts/test-deps.sh

.PHONY: test
test: install test-deps ## Set up and run the whole test suite (real NATS, PostgreSQL, SQLite, moto)
	$(UV) run --frozen pytest -q -rfE --durations=25

.PHONY: bench
bench: install container-deps base-image mlserver-env ## Benchmarks: print figures beside baselines measured in the same run
	bash scripts/bench-deps.sh
	$(UV) run --frozen python bench/gateway.py
	$(UV) run --frozen python bench/faults.py
	$(UV) run --frozen python bench/audit.py
	$(UV) run --frozen python bench/build.py
	$(UV) run --frozen python bench/run.py
	$(UV) run --frozen python bench/session.py
	$(UV) run --frozen python bench/serve.py

.PHONY: proto
proto: install ## Regenerate the Python contracts from proto/
	$(UV) run --frozen python scripts/gen_proto.py

.PHONY: lint
lint: install ## Ruff
	$(UV) run --frozen ruff check .

.PHONY: clean
clean: ## Remove the virtualenvs and local state
	rm -rf .venv $(TOOLS) .reprolab .pytest_cache

.PHONY: mlserver-env
mlserver-env: $(UV) ## MLServer 1.7.1 in its own venv, .tools/mlserver (the yardstick of tests/serving/test_oip_mlserver.py, bench/serve.py)
	UV=$(UV) bash scripts/mlserver-env.sh
