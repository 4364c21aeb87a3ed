#!/usr/bin/env bash
# Builds the images the real-Docker tests need, without any registry, and only when missing:
#   marina-test/busybox  a 2 MB scratch image with a static busybox (sh, cp, tar, find, sleep)
#   marina-test/db       Debian bookworm with real PostgreSQL 15, MariaDB and Redis servers
# Needs: docker, busybox-static (for busybox), debootstrap (for db). Run as root.
set -euo pipefail

BUSYBOX_IMAGE=marina-test/busybox:latest
DB_IMAGE=marina-test/db:latest

# Scratch space for root filesystems and build contexts, removed however the script ends.
WORKDIR=$(mktemp -d /var/tmp/marina-test-images.XXXXXX)
trap 'rm -rf "$WORKDIR"' EXIT

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

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
  DOCKER_BUILDKIT=0 docker build -q -t "$BUSYBOX_IMAGE" "$dir" >/dev/null
}

build_db() {
  local dir=$WORKDIR/dbroot
  debootstrap --variant=minbase \
    --include=postgresql-15,mariadb-server,mariadb-client,redis-server,redis-tools \
    bookworm "$dir" "$(debian_mirror)" >/dev/null
  # Service start-up inside the image is the tests' business; drop caches to keep it small.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import \
    -c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    - "$DB_IMAGE" >/dev/null
}

ensure() {
  local image=$1 builder=$2
  if have_image "$image"; then
    echo "test image $image: present"
  else
    echo "test image $image: building"
    "$builder"
    echo "test image $image: built"
  fi
}

ensure "$BUSYBOX_IMAGE" build_busybox
ensure "$DB_IMAGE" build_db
