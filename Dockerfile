# Marina's container image: the release binary on a small Debian runtime with restic.
#
#   docker build -t marina .
#
# Trust model: Marina talks to the Docker engine through its socket, which is root on the
# host in all but name, so the container runs as root; whoever can reach Marina's socket
# mount or change its config controls that node's engine. Protect the API with
# `authPassword` and keep `config.yml` and the socket out of other hands.
#
# Where no registry is reachable, `make image-local` builds the same runtime image as
# `marina:local` from Debian packages (Dockerfile.local); the runtime lines below must match
# that file's (tests/image_files.rs checks).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY assets assets
RUN cargo build --release --locked && strip target/release/marina

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends restic ca-certificates openssh-client tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/marina /usr/local/bin/marina
# runtime: begin
ENV CONFIG_FILE=/etc/marina/config.yml
VOLUME ["/var/lib/marina"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["marina", "healthcheck"]
ENTRYPOINT ["marina"]
CMD ["run"]
# runtime: end
