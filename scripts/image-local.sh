#!/usr/bin/env bash
# Builds the image `marina:local` without any registry (what the deployment tests use):
#   1. marina-base:local  Debian bookworm (debootstrap, minbase) with restic, ca-certificates,
#                         openssh-client and tzdata; rebuilt only when this script changes
#   2. marina:local       that base + target/release/marina, with the runtime settings of
#                         ./Dockerfile (Dockerfile.local)
# Needs: docker, debootstrap, a release build (`make build`). Run as root.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE_IMAGE=marina-base:local
IMAGE=${MARINA_IMAGE:-marina:local}
BINARY=$ROOT/target/release/marina
RECIPE=$(sha256sum "$ROOT/scripts/image-local.sh" | cut -c1-16)
RECIPE_LABEL=marina.image.recipe

[ -x "$BINARY" ] || { echo "image-local: $BINARY is missing; run \`make build\` first" >&2; exit 1; }

WORKDIR=$(mktemp -d /var/tmp/marina-image-local.XXXXXX)
trap 'rm -rf "$WORKDIR"' EXIT

# The Debian mirror this machine already uses, so debootstrap works where only the package
# registry is reachable.
debian_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -n1 | awk '{print $2}') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

base_recipe=$(docker image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$BASE_IMAGE" 2>/dev/null || true)
if [ "$base_recipe" = "$RECIPE" ]; then
  echo "image-local: $BASE_IMAGE up to date"
else
  echo "image-local: building $BASE_IMAGE (debootstrap, about a minute)"
  rootfs=$WORKDIR/rootfs
  debootstrap --variant=minbase --include=ca-certificates,restic,openssh-client,tzdata \
    bookworm "$rootfs" "$(debian_mirror)" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c "LABEL $RECIPE_LABEL=$RECIPE" \
    - "$BASE_IMAGE" >/dev/null
fi

context=$WORKDIR/context
mkdir -p "$context"
cp "$BINARY" "$context/marina"
strip "$context/marina" 2>/dev/null || true
cp "$ROOT/Dockerfile.local" "$context/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$context" >/dev/null
echo "image-local: built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
