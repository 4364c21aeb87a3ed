#!/bin/sh
# A Marina custom backend: packs the run Marina staged under $MARINA_BACKUP_DIR into one
# gzip-compressed tarball in $DEST_DIR, writes its SHA-256 checksum and a listing of its
# contents beside it, checks all of it, and keeps the newest $KEEP_LAST archives of this
# instance and host (Marina applies no retention to custom images).
#
#   DEST_DIR    required; where archives go. Marina mounts only /backup, so with Marina this
#               is a directory under /backup such as /backup/archives (see README.md).
#   KEEP_LAST   archives of this instance and host to keep, default 7; 0 keeps them all.
#   GZIP_LEVEL  1 (fast) to 9 (small), default 6.
#
# Files written, for instance "app" on node "node1" and the run 20270328T020000Z:
#   app-node1-20270328T020000Z.tar.gz          the run: vol/<volume>/..., dbs/<db>/dump.*
#   app-node1-20270328T020000Z.tar.gz.sha256   its checksum (`sha256sum -c` reads it)
#   app-node1-20270328T020000Z.tar.gz.list     its contents, one path a line (`tar -tzf`)
#
# With MARINA_PRE_RESTORE=1 (the backup an in-place restore makes of what it is about to
# replace) the archive is app-node1-20270328T020000Z-pre-restore.tar.gz: retention never
# deletes it and restore.sh never takes it for `latest`; restore it by that name to undo the
# restore, and delete it by hand once it is no longer needed.
#
# POSIX sh; works with busybox (sh, tar, gzip, sha256sum, find, du). Every line printed
# lands in Marina's job log as it is printed. Of the environment only the settings above and
# Marina's variables are ever printed, so secrets in `env` stay out of the log.
set -eu

log() { printf 'backup.sh: %s\n' "$*"; }
fail() {
  printf 'backup.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

# --- inputs ---------------------------------------------------------------------------------

RUN_DIR=${MARINA_BACKUP_DIR:-}
[ -n "$RUN_DIR" ] || fail "MARINA_BACKUP_DIR is not set. Marina sets it to the current run (/backup/<timestamp>); when running the image by hand, pass it with -e."
RUN_DIR=${RUN_DIR%/}
[ -d "$RUN_DIR" ] || fail "MARINA_BACKUP_DIR ($RUN_DIR) is not a directory; is the staging directory mounted at /backup?"
INSTANCE=${MARINA_INSTANCE_ID:-}
[ -n "$INSTANCE" ] || fail "MARINA_INSTANCE_ID is not set."
HOST=${MARINA_HOSTNAME:-}
[ -n "$HOST" ] || fail "MARINA_HOSTNAME is not set."
DEST=${DEST_DIR:-}
[ -n "$DEST" ] || fail "DEST_DIR is not set; set it in the instance's env in config.yml (for example DEST_DIR: /backup/archives)."
KEEP=${KEEP_LAST:-7}
LEVEL=${GZIP_LEVEL:-6}

case $KEEP in
  '' | *[!0-9]*) fail "KEEP_LAST must be a whole number (0 keeps every archive), not '$KEEP'." ;;
esac
case $LEVEL in
  [1-9]) ;;
  *) fail "GZIP_LEVEL must be a number from 1 to 9, not '$LEVEL'." ;;
esac
case $DEST in
  /*) ;;
  *) fail "DEST_DIR must be an absolute path, not '$DEST'." ;;
esac
DEST=${DEST%/}
[ -n "$DEST" ] || fail "DEST_DIR must not be /."
case "$DEST/" in
  "$RUN_DIR"/*) fail "DEST_DIR ($DEST) lies inside the run being backed up ($RUN_DIR), which Marina deletes after the job; use a directory beside it such as /backup/archives." ;;
esac

# The run's directory name is its UTC start time, YYYYMMDDTHHMMSSZ: archives sort by it.
RUN=$(basename "$RUN_DIR")
case $RUN in
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;;
  *) fail "MARINA_BACKUP_DIR ($RUN_DIR) does not end in a run timestamp such as 20270328T020000Z." ;;
esac
# Instance ids are already safe in a file name; a node name is made so.
SAFE_HOST=$(printf '%s' "$HOST" | tr -c 'A-Za-z0-9._-' '_')
PREFIX="$INSTANCE-$SAFE_HOST-"
case ${MARINA_PRE_RESTORE:-} in
  1) KIND=-pre-restore ;;
  '' | 0) KIND= ;;
  *) fail "MARINA_PRE_RESTORE must be 1 or unset, not '$MARINA_PRE_RESTORE'." ;;
esac
NAME="$PREFIX$RUN$KIND.tar.gz"
ARCHIVE="$DEST/$NAME"
SUMS="$ARCHIVE.sha256"
LIST="$ARCHIVE.list"
TAR_FAILED="$DEST/$PREFIX$RUN$KIND.tar-failed.partial"

# --- checks ---------------------------------------------------------------------------------

[ -n "$(ls -A "$RUN_DIR")" ] || fail "the run directory $RUN_DIR is empty: there is nothing to back up."
mkdir -p "$DEST" || fail "cannot create DEST_DIR ($DEST); its parent must be a writable directory."
[ -d "$DEST" ] || fail "DEST_DIR ($DEST) is not a directory."
PROBE="$DEST/.backup-sh-write-test.$$"
touch "$PROBE" 2>/dev/null || fail "DEST_DIR ($DEST) is not writable."
rm -f "$PROBE"

# Half-written files are named *.partial and removed when the script ends, also on TERM
# (`docker stop`). Marina's timeout and shutdown kill the container outright (SIGKILL); what
# such a run left behind is removed here, at the start of the next one.
trap 'rm -f "$ARCHIVE.partial" "$SUMS.partial" "$LIST.partial" "$TAR_FAILED"' EXIT
trap 'exit 143' HUP INT TERM
rm -f "$DEST/$PREFIX"*.partial
if [ -e "$ARCHIVE" ]; then
  # Only a run started in the same second (or the same run archived again by hand).
  log "$NAME exists already; it is replaced once the new archive is verified."
fi

FILES=$(find "$RUN_DIR" -type f | wc -l | tr -d ' ')
STAGED_KIB=$(du -sk "$RUN_DIR" | cut -f1)
if [ -n "$KIND" ]; then
  log "Pre-restore backup: saving what a restore is about to replace as $NAME."
fi
log "Run $RUN of instance $INSTANCE on $HOST: $FILES files, $STAGED_KIB KiB staged."

# --- write ----------------------------------------------------------------------------------

log "Packing $RUN_DIR into $ARCHIVE (gzip level $LEVEL)."
# Without pipefail, tar's failure is recorded in a file; gzip's is the pipeline's status.
{ tar -cf - -C "$RUN_DIR" . || echo "$?" >"$TAR_FAILED"; } | gzip -n -"$LEVEL" >"$ARCHIVE.partial" ||
  fail "gzip could not write $ARCHIVE.partial (is DEST_DIR full?)."
[ ! -e "$TAR_FAILED" ] || fail "tar could not read the run (exit code $(cat "$TAR_FAILED")); its message is above."

# --- verify ---------------------------------------------------------------------------------

gzip -t "$ARCHIVE.partial" || fail "the new archive fails gzip's integrity test; it was not kept."
tar -tzf "$ARCHIVE.partial" >"$LIST.partial" || fail "tar cannot list the new archive; it was not kept."
ENTRIES=$(wc -l <"$LIST.partial" | tr -d ' ')
[ "$ENTRIES" -gt 1 ] || fail "the new archive holds no entries; it was not kept."
BYTES=$(wc -c <"$ARCHIVE.partial" | tr -d ' ')
log "Archive verified: $ENTRIES entries, $BYTES bytes."

HASH=$(sha256sum "$ARCHIVE.partial" | cut -d ' ' -f 1)
printf '%s  %s\n' "$HASH" "$NAME" >"$SUMS.partial"
mv -f "$LIST.partial" "$LIST"
mv -f "$SUMS.partial" "$SUMS"
# The archive appears last, whole, with its checksum already beside it.
mv -f "$ARCHIVE.partial" "$ARCHIVE"
if CHECKED=$(cd "$DEST" && sha256sum -c "$NAME.sha256" 2>&1); then
  log "Checksum verified: $CHECKED"
else
  rm -f "$ARCHIVE" "$SUMS" "$LIST"
  fail "checksum mismatch after writing $ARCHIVE ($CHECKED); the archive was removed."
fi
log "Wrote $NAME, sha256 $HASH."

# --- retention ------------------------------------------------------------------------------

# Instance ids and the node name made safe above hold no blank or glob character, so the
# pattern below is one word; the shell sorts what it matches by name, i.e. by run timestamp.
cd "$DEST"
PATTERN="${PREFIX}[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.tar.gz"
# Checksums and listings whose archive is gone (a run killed between two renames).
for file in $PATTERN.sha256 $PATTERN.list; do
  [ -f "$file" ] || continue
  [ -e "${file%.*}" ] || rm -f "$file"
done
if [ -n "$KIND" ]; then
  log "Retention: $NAME is a pre-restore archive, kept until you delete it; restore it by name to undo the restore."
elif [ "$KEEP" -eq 0 ]; then
  log "Retention: KEEP_LAST=0, every archive is kept."
else
  COUNT=0
  for archive in $PATTERN; do
    if [ -f "$archive" ]; then COUNT=$((COUNT + 1)); fi
  done
  EXCESS=$((COUNT - KEEP))
  # Oldest first; the archive just written is never deleted.
  for archive in $PATTERN; do
    [ "$EXCESS" -gt 0 ] || break
    [ -f "$archive" ] || continue
    [ "$archive" != "$NAME" ] || continue
    rm -f "$archive" "$archive.sha256" "$archive.list"
    log "Retention: deleted $archive with its checksum and listing."
    EXCESS=$((EXCESS - 1))
  done
  KEPT=0
  for archive in $PATTERN; do
    if [ -f "$archive" ]; then KEPT=$((KEPT + 1)); fi
  done
  log "Retention: $KEPT archive(s) of $INSTANCE on $HOST kept in $DEST (KEEP_LAST=$KEEP)."
fi
log "Done."
