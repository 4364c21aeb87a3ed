# Marina's developer entry points. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: setup setup-test build run test test-images image-local bench lint fmt

# Rust installed by scripts/setup.sh (rustup) lives here; found even before a new shell.
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Where `make run` keeps its repository, staging and database.
MARINA_HOME ?= $(CURDIR)/.marina

## setup: install what building and running Marina needs (Docker, restic, Rust), when missing
setup:
	./scripts/setup.sh run

## setup-test: also install what the tests need (images tools, Prometheus, Chromium, compose)
setup-test:
	./scripts/setup.sh test

## build: the release binary at target/release/marina
build:
	$(CARGO) build --release --locked

## run: build and run Marina against the local Docker engine with examples/quickstart.yml
run: setup build
	mkdir -p $(MARINA_HOME)
	MARINA_HOME=$(MARINA_HOME) ./target/release/marina run --config examples/quickstart.yml

## test: every test, including those against the real Docker engine (builds test images if missing)
test: setup-test test-images image-local
	$(CARGO) test --locked --all-targets --features fault-injection

## test-images: the local images the Docker tests use, built without a registry when missing
test-images:
	./scripts/test-images.sh

## image-local: the container image marina:local, built without a registry (see Dockerfile.local)
image-local: build
	./scripts/image-local.sh

## bench: speed and memory figures against the real Docker engine (target/bench/results.json, docs/benchmarks.md)
bench: test-images
	$(CARGO) bench --locked --bench scenarios

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets --all-features -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all
