//! The schema, its migrations, and how connections are opened.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. Migration `n` (1-based) is
//! `MIGRATIONS[n - 1]`; each runs in its own transaction together with the version bump,
//! so a crash mid-upgrade leaves the previous version intact. Never edit a released
//! migration: append a new one.
//!
//! Timestamps are stored as Unix milliseconds (UTC) in `INTEGER` columns: they sort and
//! compare as numbers, and `datetime(ts / 1000, 'unixepoch')` shows them in the sqlite3 shell.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::{Result, StoreError};

/// Ordered schema scripts; the index + 1 is the version each one produces.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, logs and the crash journal.
    r#"
    CREATE TABLE jobs (
        id                 INTEGER PRIMARY KEY,
        iid                INTEGER NOT NULL,
        instance           TEXT    NOT NULL,
        node               TEXT    NOT NULL,
        "trigger"          TEXT    NOT NULL,
        status             TEXT    NOT NULL,
        targets_total      INTEGER NOT NULL DEFAULT 0,
        targets_successful INTEGER NOT NULL DEFAULT 0,
        created_at         INTEGER NOT NULL,
        started_at         INTEGER,
        completed_at       INTEGER,
        updated_at         INTEGER NOT NULL,
        message            TEXT,
        UNIQUE (instance, iid)
    );
    -- abort_interrupted and the status filter of GET /api/jobs.
    CREATE INDEX jobs_status ON jobs (status);

    CREATE TABLE logs (
        id       INTEGER PRIMARY KEY,
        ts       INTEGER NOT NULL,
        level    TEXT    NOT NULL,
        message  TEXT    NOT NULL,
        instance TEXT,
        target   TEXT,
        job_id   INTEGER REFERENCES jobs (id)
    );
    -- One job's lines in order; with job_id NULL it also serves the system log.
    CREATE INDEX logs_job ON logs (job_id, id);
    -- An instance's job lines, newest first.
    CREATE INDEX logs_instance ON logs (instance, id);
    -- logRetention pruning.
    CREATE INDEX logs_ts ON logs (ts);

    CREATE TABLE journal (
        id          INTEGER PRIMARY KEY,
        job_id      INTEGER NOT NULL REFERENCES jobs (id),
        kind        TEXT    NOT NULL,
        subject     TEXT    NOT NULL,
        detail      TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        resolved_at INTEGER
    );
    CREATE INDEX journal_pending ON journal (id) WHERE resolved_at IS NULL;
    "#,
    // 2: job kinds. Every job before this was a backup; a restore keeps its request.
    r"
    ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'backup';
    ALTER TABLE jobs ADD COLUMN request TEXT;
    ",
];

/// The newest schema version this build knows.
#[allow(clippy::cast_possible_wrap)] // A handful of migrations, far below i64::MAX.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a connection waits for a lock before failing with `SQLITE_BUSY`. The writer is
/// alone, so only checkpoints and a second process on the same file can make it wait.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating it and its directory if needed) and migrates the database at `path`,
/// returning the write connection.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // WAL lets readers run beside the writer; NORMAL syncs at checkpoints only, which keeps
    // every commit across a process crash (journal writes sync fully, see the writer).
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %path.display(),
            journal_mode = %mode,
            "The filesystem does not support SQLite's WAL mode; API reads will wait for log writes."
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_error)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing, migrated database.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`], refusing files from a newer Marina.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    loop {
        let migrate_error = |version, source| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source,
        };
        // IMMEDIATE takes the write lock before reading the version, so two processes
        // starting on one file cannot both apply the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let version = found + 1;
        let script = usize::try_from(found)
            .ok()
            .and_then(|index| MIGRATIONS.get(index))
            .ok_or_else(|| {
                migrate_error(
                    version,
                    rusqlite::Error::InvalidParameterName(format!("user_version {found}")),
                )
            })?;
        tx.execute_batch(script)
            .map_err(|e| migrate_error(version, e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| migrate_error(version, e))?;
        tx.commit().map_err(|e| migrate_error(version, e))?;
        tracing::info!(
            path = %path.display(),
            version,
            "Upgraded the job store schema."
        );
    }
}

#[cfg(test)]
pub(crate) fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}
