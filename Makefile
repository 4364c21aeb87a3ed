# Marina's developer entry points. `make test` is what CI runs (through .ci/run).
CARGO ?= cargo

.PHONY: build run test test-images lint fmt

# Where `make run` keeps its repository, staging and database.
MARINA_HOME ?= $(CURDIR)/.marina

## build: the release binary at target/release/marina
build:
	$(CARGO) build --release --locked

## run: build and run Marina against the local Docker engine with examples/quickstart.yml
run: build
	mkdir -p $(MARINA_HOME)
	MARINA_HOME=$(MARINA_HOME) ./target/release/marina run --config examples/quickstart.yml

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
