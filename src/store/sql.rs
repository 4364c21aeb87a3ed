//! Every SQL statement of the store, as plain functions over a connection. The writer thread
//! calls the writing ones inside its batch transaction; readers call the others on
//! read-only connections.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::{Failure, StoreError};
use super::types::{
    JobFilter, JobId, JobRecord, JobStatus, JournalEntry, JournalId, JournalKind, LogId, LogLevel,
    LogLine, LogRecord, NewJob, parse_trigger, trigger_str,
};
use crate::model::{History, InstanceId};

type Sql<T> = Result<T, Failure>;

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Turns a text or number column into a typed value, reporting which column held what.
fn conversion(
    column: usize,
    ty: Type,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, ty, Box::new(e))
}

#[derive(Debug, thiserror::Error)]
#[error("timestamp {0} ms is out of range")]
struct BadTimestamp(i64);

fn time_at(row: &Row<'_>, column: usize) -> rusqlite::Result<DateTime<Utc>> {
    let ms: i64 = row.get(column)?;
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| conversion(column, Type::Integer, BadTimestamp(ms)))
}

fn optional_time_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(column)? {
        None => Ok(None),
        Some(ms) => DateTime::from_timestamp_millis(ms)
            .map(Some)
            .ok_or_else(|| conversion(column, Type::Integer, BadTimestamp(ms))),
    }
}

fn parsed<T>(row: &Row<'_>, column: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(column)?;
    text.parse().map_err(|e| conversion(column, Type::Text, e))
}

fn instance_at(row: &Row<'_>, column: usize) -> rusqlite::Result<InstanceId> {
    let text: String = row.get(column)?;
    InstanceId::parse(&text).map_err(|e| conversion(column, Type::Text, e))
}

fn optional_instance_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<InstanceId>> {
    row.get::<_, Option<String>>(column)?
        .map(|text| InstanceId::parse(&text).map_err(|e| conversion(column, Type::Text, e)))
        .transpose()
}

const JOB_COLUMNS: &str = r#"id, iid, instance, node, "trigger", status, targets_total,
    targets_successful, created_at, started_at, completed_at, updated_at, message, kind, request"#;

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let trigger: String = row.get(4)?;
    Ok(JobRecord {
        id: JobId(row.get(0)?),
        iid: row.get(1)?,
        instance: instance_at(row, 2)?,
        node: row.get(3)?,
        trigger: parse_trigger(&trigger).map_err(|e| conversion(4, Type::Text, e))?,
        status: parsed(row, 5)?,
        targets_total: row.get(6)?,
        targets_successful: row.get(7)?,
        created_at: time_at(row, 8)?,
        started_at: optional_time_at(row, 9)?,
        completed_at: optional_time_at(row, 10)?,
        updated_at: time_at(row, 11)?,
        message: row.get(12)?,
        kind: parsed(row, 13)?,
        restore: row
            .get::<_, Option<String>>(14)?
            .map(|text| serde_json::from_str(&text).map_err(|e| conversion(14, Type::Text, e)))
            .transpose()?,
    })
}

/// Log columns joined with the job's iid; `l` is `logs`, `j` is `jobs`.
const LOG_SELECT: &str =
    "SELECT l.id, l.ts, l.level, l.message, l.instance, l.target, l.job_id, j.iid
    FROM logs AS l LEFT JOIN jobs AS j ON j.id = l.job_id";

fn log_from_row(row: &Row<'_>) -> rusqlite::Result<LogRecord> {
    Ok(LogRecord {
        id: LogId(row.get(0)?),
        line: LogLine {
            ts: time_at(row, 1)?,
            level: parsed(row, 2)?,
            message: row.get(3)?,
            instance: optional_instance_at(row, 4)?,
            target: row.get(5)?,
            job_id: row.get::<_, Option<i64>>(6)?.map(JobId),
        },
        job_iid: row.get(7)?,
    })
}

const JOURNAL_COLUMNS: &str = "id, job_id, kind, subject, detail, created_at, resolved_at";

fn journal_from_row(row: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        id: JournalId(row.get(0)?),
        job_id: JobId(row.get(1)?),
        kind: parsed(row, 2)?,
        subject: row.get(3)?,
        detail: row.get(4)?,
        created_at: time_at(row, 5)?,
        resolved_at: optional_time_at(row, 6)?,
    })
}

// ----- writes (writer thread only) -----

/// Inserts one log line. A job line takes the instance of its job, so the instance log
/// query can use the `logs_instance` index without a join.
pub(crate) fn insert_log(conn: &Connection, line: &LogLine) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO logs (ts, level, message, instance, target, job_id)
         VALUES (?1, ?2, ?3, COALESCE((SELECT instance FROM jobs WHERE id = ?6), ?4), ?5, ?6)",
    )?;
    stmt.execute(params![
        millis(line.ts),
        line.level.as_str(),
        line.message,
        line.instance.as_ref().map(InstanceId::as_str),
        line.target,
        line.job_id.map(|j| j.0),
    ])?;
    Ok(())
}

pub(crate) fn create_job(
    conn: &Connection,
    instance: &InstanceId,
    node: &str,
    new: &NewJob,
    now: DateTime<Utc>,
) -> Sql<JobRecord> {
    // Only the writer thread inserts jobs, so reading the max and inserting cannot race.
    let iid: i64 = conn.query_row(
        "SELECT COALESCE(MAX(iid), 0) + 1 FROM jobs WHERE instance = ?1",
        [instance.as_str()],
        |row| row.get(0),
    )?;
    conn.execute(
        r#"INSERT INTO jobs (iid, instance, node, "trigger", status, created_at, updated_at, kind, request)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)"#,
        params![
            iid,
            instance.as_str(),
            node,
            trigger_str(new.trigger()),
            JobStatus::Scheduled.as_str(),
            millis(now),
            new.kind().as_str(),
            new.request_json(),
        ],
    )?;
    let id = JobId(conn.last_insert_rowid());
    job(conn, id)?.ok_or(Failure::Store(StoreError::NoSuchJob(id)))
}

/// Deletes a job that is still `scheduled` and has nothing attached (no log line, no journal
/// entry): a record made for a request that was then refused.
pub(crate) fn delete_job(conn: &Connection, id: JobId) -> Sql<()> {
    let current = job(conn, id)?.ok_or(StoreError::NoSuchJob(id))?;
    if current.status != JobStatus::Scheduled {
        return Err(StoreError::Started {
            job: id,
            status: current.status,
        }
        .into());
    }
    // Lines logged about the request stay, as system lines.
    conn.execute("UPDATE logs SET job_id = NULL WHERE job_id = ?1", [id.0])?;
    conn.execute("DELETE FROM jobs WHERE id = ?1", [id.0])?;
    Ok(())
}

pub(crate) fn set_job_status(
    conn: &Connection,
    id: JobId,
    status: JobStatus,
    message: Option<&str>,
    now: DateTime<Utc>,
) -> Sql<JobRecord> {
    let current = job(conn, id)?.ok_or(StoreError::NoSuchJob(id))?;
    if !current.status.can_become(status) {
        return Err(StoreError::Transition {
            job: id,
            from: current.status,
            to: status,
        }
        .into());
    }
    let now = millis(now);
    let started = (status == JobStatus::InProgress).then_some(now);
    let completed = status.is_terminal().then_some(now);
    conn.execute(
        "UPDATE jobs SET status = ?2,
             started_at = COALESCE(started_at, ?3),
             completed_at = COALESCE(?4, completed_at),
             message = COALESCE(?5, message),
             updated_at = ?6
         WHERE id = ?1",
        params![id.0, status.as_str(), started, completed, message, now],
    )?;
    job(conn, id)?.ok_or(Failure::Store(StoreError::NoSuchJob(id)))
}

pub(crate) fn set_job_targets(
    conn: &Connection,
    id: JobId,
    total: u32,
    successful: u32,
    now: DateTime<Utc>,
) -> Sql<()> {
    let changed = conn.execute(
        "UPDATE jobs SET targets_total = ?2, targets_successful = ?3, updated_at = ?4
         WHERE id = ?1",
        params![id.0, total, successful, millis(now)],
    )?;
    if changed == 0 {
        return Err(StoreError::NoSuchJob(id).into());
    }
    Ok(())
}

pub(crate) fn journal_add(
    conn: &Connection,
    job_id: JobId,
    kind: JournalKind,
    subject: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Sql<JournalId> {
    if job(conn, job_id)?.is_none() {
        return Err(StoreError::NoSuchJob(job_id).into());
    }
    conn.execute(
        "INSERT INTO journal (job_id, kind, subject, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![job_id.0, kind.as_str(), subject, detail, millis(now)],
    )?;
    Ok(JournalId(conn.last_insert_rowid()))
}

pub(crate) fn journal_resolve(conn: &Connection, id: JournalId, now: DateTime<Utc>) -> Sql<()> {
    // Resolving twice keeps the first time: recovery may race a late normal cleanup.
    let changed = conn.execute(
        "UPDATE journal SET resolved_at = COALESCE(resolved_at, ?2) WHERE id = ?1",
        params![id.0, millis(now)],
    )?;
    if changed == 0 {
        return Err(StoreError::NoSuchJournalEntry(id).into());
    }
    Ok(())
}

/// The summary given to jobs found unfinished at start-up.
const INTERRUPTED: &str = "interrupted: Marina stopped before the job finished";

pub(crate) fn abort_interrupted(conn: &Connection, now: DateTime<Utc>) -> Sql<Vec<JobRecord>> {
    let ids: Vec<JobId> = conn
        .prepare("SELECT id FROM jobs WHERE status IN ('scheduled', 'in_progress') ORDER BY id")?
        .query_map([], |row| row.get(0).map(JobId))?
        .collect::<rusqlite::Result<_>>()?;
    let now_ms = millis(now);
    let mut aborted = Vec::with_capacity(ids.len());
    for id in ids {
        conn.execute(
            "UPDATE jobs SET status = ?2, completed_at = ?3, updated_at = ?3,
                 message = COALESCE(message, ?4)
             WHERE id = ?1",
            params![id.0, JobStatus::Aborted.as_str(), now_ms, INTERRUPTED],
        )?;
        aborted.extend(job(conn, id)?);
    }
    Ok(aborted)
}

pub(crate) fn prune_logs(conn: &Connection, older_than: DateTime<Utc>) -> Sql<u64> {
    let deleted = conn.execute("DELETE FROM logs WHERE ts < ?1", [millis(older_than)])?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

// ----- reads -----

pub(crate) fn job(conn: &Connection, id: JobId) -> Sql<Option<JobRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id.0], job_from_row)
        .optional()?)
}

pub(crate) fn jobs(conn: &Connection, filter: &JobFilter) -> Sql<Vec<JobRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE (?1 IS NULL OR instance = ?1) AND (?2 IS NULL OR status = ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![
            filter.instance.as_ref().map(InstanceId::as_str),
            filter.status.map(JobStatus::as_str),
            filter.limit,
        ],
        job_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn instance_jobs(
    conn: &Connection,
    instance: &InstanceId,
    limit: u32,
) -> Sql<Vec<JobRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE instance = ?1 ORDER BY iid DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![instance.as_str(), limit], job_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn latest_backup(conn: &Connection, instance: &InstanceId) -> Sql<Option<JobRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE instance = ?1 AND kind = 'backup'
             ORDER BY iid DESC LIMIT 1"
        ))?
        .query_row([instance.as_str()], job_from_row)
        .optional()?)
}

/// Runs a "newest `limit` rows" log query and returns the rows oldest first.
fn tail(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Sql<Vec<LogRecord>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt
        .query_map(params, log_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

pub(crate) fn job_logs(
    conn: &Connection,
    job_id: JobId,
    limit: Option<u32>,
) -> Sql<Vec<LogRecord>> {
    // LIMIT -1 is SQLite's "no limit".
    let limit = limit.map_or(-1, i64::from);
    tail(
        conn,
        &format!("{LOG_SELECT} WHERE l.job_id = ?1 ORDER BY l.id DESC LIMIT ?2"),
        params![job_id.0, limit],
    )
}

/// Lines of `job_id` after `after`, oldest first, at most `limit`: how a follower pages
/// forward through a growing log without gaps or repeats.
pub(crate) fn job_logs_after(
    conn: &Connection,
    job_id: JobId,
    after: LogId,
    limit: u32,
) -> Sql<Vec<LogRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{LOG_SELECT} WHERE l.job_id = ?1 AND l.id > ?2 ORDER BY l.id ASC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![job_id.0, after.0, limit], log_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn instance_logs(
    conn: &Connection,
    instance: &InstanceId,
    limit: u32,
) -> Sql<Vec<LogRecord>> {
    tail(
        conn,
        &format!(
            "{LOG_SELECT} WHERE l.instance = ?1 AND l.job_id IS NOT NULL ORDER BY l.id DESC LIMIT ?2"
        ),
        params![instance.as_str(), limit],
    )
}

pub(crate) fn system_logs(
    conn: &Connection,
    limit: u32,
    min_level: Option<LogLevel>,
) -> Sql<Vec<LogRecord>> {
    // The level list is built from our own constants, never from request text.
    let levels = LogLevel::ALL
        .into_iter()
        .filter(|level| min_level.is_none_or(|min| level.is_at_least(min)))
        .map(|level| format!("'{}'", level.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    tail(
        conn,
        &format!(
            "{LOG_SELECT} WHERE l.job_id IS NULL AND l.level IN ({levels}) ORDER BY l.id DESC LIMIT ?1"
        ),
        params![limit],
    )
}

pub(crate) fn pending_journal(conn: &Connection) -> Sql<Vec<JournalEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOURNAL_COLUMNS} FROM journal WHERE resolved_at IS NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([], journal_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn history(conn: &Connection) -> Sql<BTreeMap<InstanceId, History>> {
    let mut history: BTreeMap<InstanceId, History> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT instance, MAX(completed_at) FROM jobs
         WHERE status = 'success' AND completed_at IS NOT NULL AND kind = 'backup'
         GROUP BY instance",
    )?;
    let successes = stmt.query_map([], |row| Ok((instance_at(row, 0)?, time_at(row, 1)?)))?;
    for success in successes {
        let (instance, at) = success?;
        history.entry(instance).or_default().last_success = Some(at);
    }
    // The latest finished job per instance; ties on the millisecond go to the later job.
    let mut stmt = conn.prepare_cached(
        "SELECT instance, completed_at, status FROM (
             SELECT instance, completed_at, status,
                    ROW_NUMBER() OVER (PARTITION BY instance ORDER BY completed_at DESC, id DESC) AS n
             FROM jobs WHERE completed_at IS NOT NULL AND kind = 'backup'
         ) WHERE n = 1",
    )?;
    let finished = stmt.query_map([], |row| {
        Ok((
            instance_at(row, 0)?,
            time_at(row, 1)?,
            parsed::<JobStatus>(row, 2)?,
        ))
    })?;
    for last in finished {
        let (instance, at, status) = last?;
        history.entry(instance).or_default().last_finished =
            Some((at, status == JobStatus::Success));
    }
    Ok(history)
}
