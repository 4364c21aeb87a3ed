#!/usr/bin/env bash
# Builds the images the real-Docker tests need, without any registry, and only when missing:
#   marina-test/busybox  a 2 MB scratch image with a static busybox (sh, cp, tar, find, sleep)
#   marina-test/db       Debian bookworm with real PostgreSQL 15, MariaDB and Redis servers;
#                        `docker run marina-test/db postgres|mariadb|redis` starts one of them
# Needs: docker, busybox-static (for busybox), debootstrap (for db). Run as root.
set -euo pipefail

BUSYBOX_IMAGE=marina-test/busybox:latest
DB_IMAGE=marina-test/db:latest

# Images carry a hash of the recipe that built them (this script and the db entrypoint), so a
# changed recipe rebuilds them while an unchanged one is reused.
HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=$(cat "$HERE/test-images.sh" "$HERE/test-db-entrypoint.sh" | sha256sum | cut -c1-16)
RECIPE_LABEL=marina.test.recipe

# Scratch space for root filesystems and build contexts, removed however the script ends.
WORKDIR=$(mktemp -d /var/tmp/marina-test-images.XXXXXX)
trap 'rm -rf "$WORKDIR"' EXIT

image_recipe() {
  docker image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null || true
}

# The Debian mirror this machine already uses, so debootstrap works where only the package
# registry is reachable.
debian_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -n1 | awk '{print $2}') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

build_busybox() {
  local dir=$WORKDIR/busybox
  mkdir -p "$dir/bin"
  cp "$(command -v busybox)" "$dir/bin/busybox"
  cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
DOCKERFILE
  echo "LABEL $RECIPE_LABEL=$RECIPE" >>"$dir/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$BUSYBOX_IMAGE" "$dir" >/dev/null
}

build_db() {
  local dir=$WORKDIR/dbroot
  debootstrap --variant=minbase \
    --include=postgresql-15,mariadb-server,mariadb-client,redis-server,redis-tools \
    bookworm "$dir" "$(debian_mirror)" >/dev/null
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  install -m 0755 "$HERE/test-db-entrypoint.sh" "$dir/usr/local/bin/marina-test-db"
  tar -C "$dir" -c . | docker import \
    -c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENTRYPOINT ["/usr/local/bin/marina-test-db"]' \
    -c "LABEL $RECIPE_LABEL=$RECIPE" \
    - "$DB_IMAGE" >/dev/null
}

ensure() {
  local image=$1 builder=$2
  if [ "$(image_recipe "$image")" = "$RECIPE" ]; then
    echo "test image $image: up to date"
  else
    echo "test image $image: building"
    "$builder"
    echo "test image $image: built"
  fi
}

ensure "$BUSYBOX_IMAGE" build_busybox
ensure "$DB_IMAGE" build_db
