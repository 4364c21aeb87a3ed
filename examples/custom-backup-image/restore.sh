#!/bin/sh
# The restore side of the example custom backend (Marina's restore contract, see
# docs/custom-backends.md): finds one archive that backup.sh wrote to $DEST_DIR, checks its
# SHA-256 checksum, and extracts only the target's part of it into the empty run directory
# $MARINA_BACKUP_DIR, in the staging layout Marina restores from:
#
#   vol/<volume>/...             for MARINA_RESTORE_TARGET=volume:<volume>
#   dbs/<container>/dump.*       for MARINA_RESTORE_TARGET=db:<container>
#
# Owners (numeric), permissions and file modification times (to the second: tar keeps no
# more) are kept; directories and symlinks get the time of the extraction.
#
#   MARINA_RESTORE_SNAPSHOT   which archive: `latest` (the newest scheduled backup of this
#                             instance on this node: pre-restore archives are never
#                             `latest`), or a name: the archive's file name with or without
#                             `.tar.gz` (`app-node1-20270328T020000Z`), or the run it
#                             holds (`20270328T020000Z`, `20270328T020000Z-pre-restore`).
#   DEST_DIR                  where backup.sh wrote the archives (the instance's env).
#
# Marina runs it with MARINA_RESTORE=1; every line printed lands in the job log. Problems
# are printed as `restore.sh: ERROR: ...` and end it with exit code 1, which fails the
# restore before Marina has changed anything.
set -eu

log() { printf 'restore.sh: %s\n' "$*"; }
fail() {
  printf 'restore.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

# --- inputs ---------------------------------------------------------------------------------

[ "${MARINA_RESTORE:-}" = 1 ] || fail "MARINA_RESTORE is not 1: this script restores, and Marina runs it only for a restore (a backup runs /backup.sh). When running it by hand, pass -e MARINA_RESTORE=1."
RUN_DIR=${MARINA_BACKUP_DIR:-}
[ -n "$RUN_DIR" ] || fail "MARINA_BACKUP_DIR is not set. Marina sets it to the empty run directory to restore into (/backup/<timestamp>)."
RUN_DIR=${RUN_DIR%/}
[ -d "$RUN_DIR" ] || fail "MARINA_BACKUP_DIR ($RUN_DIR) is not a directory; is the staging directory mounted at /backup?"
[ -z "$(ls -A "$RUN_DIR")" ] || fail "MARINA_BACKUP_DIR ($RUN_DIR) is not empty; a restore starts from an empty run directory."
INSTANCE=${MARINA_INSTANCE_ID:-}
[ -n "$INSTANCE" ] || fail "MARINA_INSTANCE_ID is not set."
HOST=${MARINA_HOSTNAME:-}
[ -n "$HOST" ] || fail "MARINA_HOSTNAME is not set."
TARGET=${MARINA_RESTORE_TARGET:-}
SNAPSHOT=${MARINA_RESTORE_SNAPSHOT:-latest}
DEST=${DEST_DIR:-}
[ -n "$DEST" ] || fail "DEST_DIR is not set; it is where backup.sh wrote the archives (the instance's env in config.yml, for example DEST_DIR: /backup/archives)."
case $DEST in
  /*) ;;
  *) fail "DEST_DIR must be an absolute path, not '$DEST'." ;;
esac
DEST=${DEST%/}
[ -d "$DEST" ] || fail "DEST_DIR ($DEST) is not a directory: there are no archives to restore from."

# The target names its part of the layout. Docker names hold no '/', so the part stays in
# the run directory.
case $TARGET in
  volume:?*) PART="vol/${TARGET#volume:}" ;;
  db:?*) PART="dbs/${TARGET#db:}" ;;
  *) fail "MARINA_RESTORE_TARGET is '$TARGET', not volume:<name> or db:<name>." ;;
esac
case ${TARGET#*:} in
  *[!A-Za-z0-9_.-]* | .*) fail "MARINA_RESTORE_TARGET ($TARGET) does not name a Docker volume or container." ;;
esac
case $SNAPSHOT in
  '' | *[!A-Za-z0-9._:-]*) fail "MARINA_RESTORE_SNAPSHOT ('$SNAPSHOT') is neither 'latest' nor an archive name." ;;
esac

SAFE_HOST=$(printf '%s' "$HOST" | tr -c 'A-Za-z0-9._-' '_')
PREFIX="$INSTANCE-$SAFE_HOST-"
# Scheduled archives only: a pre-restore archive ends in -pre-restore.tar.gz.
PATTERN="${PREFIX}[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.tar.gz"

# --- the archive ----------------------------------------------------------------------------

cd "$DEST"
NAME=
if [ "$SNAPSHOT" = latest ]; then
  # The shell sorts what it matches by name, i.e. by run timestamp: the last is the newest.
  for archive in $PATTERN; do
    if [ -f "$archive" ]; then NAME=$archive; fi
  done
  [ -n "$NAME" ] || fail "there is no archive of instance $INSTANCE on node $HOST in $DEST ($PATTERN): back it up first, or name an archive in MARINA_RESTORE_SNAPSHOT."
else
  for candidate in "$SNAPSHOT" "$SNAPSHOT.tar.gz" "$PREFIX$SNAPSHOT.tar.gz"; do
    case $candidate in
      "$INSTANCE"-*.tar.gz) ;;
      *) continue ;;
    esac
    if [ -f "$candidate" ]; then
      NAME=$candidate
      break
    fi
  done
  if [ -z "$NAME" ]; then
    KNOWN=$(ls -1 2>/dev/null | grep -E "^$INSTANCE-.*\.tar\.gz$" | tr '\n' ' ' || true)
    fail "there is no archive '$SNAPSHOT' of instance $INSTANCE in $DEST (give a file name, or a run such as 20270328T020000Z of node $HOST). Archives there: ${KNOWN:-none}"
  fi
fi
ARCHIVE="$DEST/$NAME"
log "Restoring $TARGET of instance $INSTANCE from $NAME (asked for: $SNAPSHOT)."

[ -f "$NAME.sha256" ] || fail "$NAME has no checksum file $NAME.sha256 beside it; it is not restored unchecked."
if CHECKED=$(sha256sum -c "$NAME.sha256" 2>&1); then
  log "Checksum verified: $CHECKED"
else
  fail "checksum mismatch for $ARCHIVE ($CHECKED); the archive is damaged and was not restored."
fi

# tar lists a directory member with a trailing slash: ./vol/<volume>/ (the archive's
# checksum holds, so a listing that ends early can only mean the part is not there).
tar -tzf "$ARCHIVE" | grep -Fqx "./$PART/" ||
  fail "$NAME holds no $PART: $TARGET was not part of that backup. Pick an archive that holds it."

# --- extract --------------------------------------------------------------------------------

log "Extracting ./$PART from $NAME into $RUN_DIR."
tar -xzpf "$ARCHIVE" --numeric-owner -C "$RUN_DIR" "./$PART" ||
  fail "tar could not extract $PART from $NAME (its message is above)."
[ -d "$RUN_DIR/$PART" ] || fail "extracting $PART from $NAME left nothing in $RUN_DIR."
FILES=$(find "$RUN_DIR/$PART" -type f | wc -l | tr -d ' ')
KIB=$(du -sk "$RUN_DIR/$PART" | cut -f1)
log "Extracted $PART: $FILES files, $KIB KiB."
log "Done."
