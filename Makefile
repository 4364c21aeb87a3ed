# Marina's developer entry points. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: build test test-images lint fmt

## build: the release binary at target/release/marina
build:
	$(CARGO) build --release --locked

## test: every test, including those against the real Docker engine (builds test images if missing)
test: test-images
	$(CARGO) test --locked --all-targets

## test-images: the local images the Docker tests use, built without a registry when missing
test-images:
	./scripts/test-images.sh

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all
