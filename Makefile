# Marina's developer entry points. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: setup setup-test build run test test-images image-local bench fuzz lint fmt

# Rust installed by scripts/setup.sh (rustup) lives here; found even before a new shell.
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Where `make run` keeps its repository, staging and database.
MARINA_HOME ?= $(CURDIR)/.marina

# How long `make fuzz` runs each fuzz target, in seconds.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := config labels

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

## fuzz: run each cargo-fuzz target (fuzz/: config, labels, seeded from fuzz/seeds/) for FUZZ_SECONDS (default 60) on the nightly toolchain; installs cargo-fuzz when missing
fuzz:
	@rustup run nightly rustc --version >/dev/null 2>&1 || { echo "make fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$target && \
		$(CARGO) +nightly fuzz run $$target corpus/$$target seeds/$$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets --all-features -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all
