//! The benchmark's own image: busybox plus a stand-in `pg_dumpall` that writes 2 gibibytes of
//! SQL-like text, and a custom backup script (`/backup.sh`) that either archives the staged
//! run (`MODE=work`) or prints 100,000 lines (`MODE=lines`).

use crate::support::{BUSYBOX, ImageGuard, build_image, prefix};

/// Bytes the stand-in `pg_dumpall` writes.
pub const DUMP_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Lines `/backup.sh` prints with `MODE=lines`.
pub const LINES: usize = 100_000;

/// Builds the image; the guard removes it.
pub fn build() -> (String, ImageGuard) {
    let tag = format!("{}-tools:latest", prefix());
    let dockerfile =
        format!("FROM {BUSYBOX}\nCOPY pg_dumpall /bin/pg_dumpall\nCOPY backup.sh /backup.sh\n");
    let dump = format!(
        "#!/bin/sh\n# A stand-in for pg_dumpall: {DUMP_BYTES} bytes of SQL-like text on stdout.\n\
         yes \"INSERT INTO bench (id, payload) VALUES (42, 'a row of the benchmark stand-in dump');\" | head -c {DUMP_BYTES}\n"
    );
    let backup = format!(
        "#!/bin/sh\nset -e\ncase \"$MODE\" in\nlines)\n  \
         awk 'BEGIN {{ for (i = 1; i <= {LINES}; i++) printf \"bench line %06d: a typical line of backup tool output\\n\", i }}'\n  ;;\n\
         *)\n  tar -cf - -C \"$MARINA_BACKUP_DIR\" . | gzip -1 | wc -c\n  ;;\nesac\n"
    );
    let guard = build_image(
        &tag,
        &dockerfile,
        &[("pg_dumpall", &dump), ("backup.sh", &backup)],
    );
    (tag, guard)
}
