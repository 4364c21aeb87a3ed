#!/usr/bin/env bash
# Installs what Marina needs on a Debian machine, only what is missing, and starts a Docker
# engine when none answers.
#
#   scripts/setup.sh run    to build and run Marina: a C toolchain, make, restic, Docker,
#                           and Rust (through rustup) when cargo is missing
#   scripts/setup.sh test   also what the test suite uses: busybox-static and debootstrap
#                           (local test images), prometheus (promtool and a real server),
#                           docker-compose, chromium and chromedriver (dashboard tests)
#
# Uses sudo when not run as root. `make run` and `make test` call it.
set -euo pipefail

purpose=${1:-run}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

missing=()
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need make make
need cc build-essential
need curl curl
need restic restic
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
  missing+=(docker.io)
fi
if [ "$purpose" = test ]; then
  need busybox busybox-static
  need debootstrap debootstrap
  need promtool prometheus
  need docker-compose docker-compose
  need chromium chromium
  need chromedriver chromium-driver
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: no Docker engine answers; starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || {
    echo "setup: dockerd did not start; its log:" >&2
    $SUDO tail -n 50 /var/log/dockerd.log >&2 || true
    exit 1
  }
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
    --component clippy,rustfmt
  echo "setup: Rust is in ~/.cargo/bin; open a new shell or run: . \"\$HOME/.cargo/env\""
fi
echo "setup: ready (Docker $(docker info --format '{{.ServerVersion}}'), $(restic version | cut -d' ' -f1-2))"
