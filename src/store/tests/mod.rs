//! The job store, against real SQLite files: opening, migrating and refusing a file here;
//! job records, the journal and log lines in their own files.

use std::path::PathBuf;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::Connection;
use tempfile::TempDir;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

mod jobs;
mod journal;
mod logs;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
        + TimeDelta::seconds(seconds)
}

fn instance(id: &str) -> InstanceId {
    InstanceId::parse(id).unwrap()
}

/// A store in a fresh directory; the directory lives as long as the returned guard.
async fn fresh() -> (Store, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("marina.db")).await.unwrap();
    (store, dir)
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn count(path: &Path, sql: &str) -> i64 {
    raw(path).query_row(sql, [], |row| row.get(0)).unwrap()
}

fn messages(logs: &[LogRecord]) -> Vec<&str> {
    logs.iter().map(|l| l.line.message.as_str()).collect()
}

#[tokio::test]
async fn a_fresh_file_is_created_with_its_directory_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/marina/marina.db");
    let store = Store::open(&path).await.unwrap();
    store.close().await.unwrap();
    let conn = raw(&path);
    assert_eq!(schema::user_version(&conn), schema::SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    for table in ["jobs", "logs", "journal"] {
        let n = count(
            &path,
            &format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            ),
        );
        assert_eq!(n, 1, "{table}");
    }
}

#[tokio::test]
async fn reopening_keeps_the_data_and_the_version() {
    let (store, dir) = fresh().await;
    let path = store.path().to_path_buf();
    let job = store
        .create_job(&instance("a"), "node1", Trigger::Manual, at(0))
        .await
        .unwrap();
    drop(store);
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.job(job.id).await.unwrap(), Some(job));
    store.close().await.unwrap();
    assert_eq!(schema::user_version(&raw(&path)), schema::SCHEMA_VERSION);
    drop(dir);
}

#[tokio::test]
async fn a_file_from_a_newer_marina_is_refused() {
    let (store, _dir) = fresh().await;
    let path = store.path().to_path_buf();
    store.close().await.unwrap();
    raw(&path)
        .pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1)
        .unwrap();
    let error = Store::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::TooNew { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("newer Marina"), "{text}");
}

#[tokio::test]
async fn an_unusable_path_names_the_path_and_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let error = Store::open(dir.path()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(text.contains("check dbPath"), "{text}");
}
