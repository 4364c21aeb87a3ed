use std::path::PathBuf;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::Connection;
use tempfile::TempDir;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

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

#[tokio::test]
async fn job_numbers_count_per_instance() {
    let (store, _dir) = fresh().await;
    let (a, b) = (instance("a"), instance("b"));
    let mut iids = Vec::new();
    for who in [&a, &b, &a, &a, &b] {
        let job = store
            .create_job(who, "node1", Trigger::Schedule, at(0))
            .await
            .unwrap();
        assert_eq!(job.status, JobStatus::Scheduled);
        assert_eq!(&job.instance, who);
        iids.push((job.instance.to_string(), job.iid));
    }
    let expected = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2)];
    let expected: Vec<_> = expected
        .iter()
        .map(|(i, n)| ((*i).to_owned(), *n))
        .collect();
    assert_eq!(iids, expected);
    let latest = store.latest_job(&a).await.unwrap().unwrap();
    assert_eq!(latest.iid, 3);
    assert!(store.latest_job(&instance("c")).await.unwrap().is_none());
}

#[tokio::test]
async fn status_changes_set_their_timestamps() {
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "node1", Trigger::CatchUp, at(0))
        .await
        .unwrap();
    assert_eq!(job.trigger, Trigger::CatchUp);
    assert_eq!((job.created_at, job.updated_at), (at(0), at(0)));
    assert_eq!((job.started_at, job.completed_at), (None, None));

    let running = store
        .set_job_status(job.id, JobStatus::InProgress, None, at(10))
        .await
        .unwrap();
    assert_eq!(running.started_at, Some(at(10)));
    assert_eq!(running.completed_at, None);
    assert_eq!(running.updated_at, at(10));

    store.set_job_targets(job.id, 3, 1, at(20)).await.unwrap();
    let done = store
        .set_job_status(
            job.id,
            JobStatus::PartialSuccess,
            Some("2 of 3 targets failed".to_owned()),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(done.started_at, Some(at(10)), "the start is kept");
    assert_eq!(done.completed_at, Some(at(30)));
    assert_eq!((done.targets_total, done.targets_successful), (3, 1));
    assert_eq!(done.message.as_deref(), Some("2 of 3 targets failed"));

    let error = store
        .set_job_status(job.id, JobStatus::Success, None, at(40))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Transition {
                from: JobStatus::PartialSuccess,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(store.job(job.id).await.unwrap(), Some(done), "unchanged");

    let missing = store
        .set_job_status(JobId(999), JobStatus::Failed, None, at(50))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NoSuchJob(JobId(999))),
        "{missing:?}"
    );
    assert!(matches!(
        store.set_job_targets(JobId(999), 1, 1, at(50)).await,
        Err(StoreError::NoSuchJob(_))
    ));
}

#[test]
fn lifecycle_words_round_trip() {
    for status in JobStatus::ALL {
        assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!(status.as_str())
        );
    }
    assert!("done".parse::<JobStatus>().is_err());
    for level in LogLevel::ALL {
        assert_eq!(level.as_str().parse::<LogLevel>().unwrap(), level);
        assert_eq!(
            level.as_str().to_lowercase().parse::<LogLevel>().unwrap(),
            level
        );
    }
    for kind in JournalKind::ALL {
        assert_eq!(kind.as_str().parse::<JournalKind>().unwrap(), kind);
    }
    let terminal: Vec<_> = JobStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(terminal.len(), 5);
    assert!(JobStatus::Scheduled.can_become(JobStatus::Aborted));
    assert!(!JobStatus::InProgress.can_become(JobStatus::Scheduled));
    assert!(!JobStatus::Failed.can_become(JobStatus::Failed));
}

#[tokio::test]
async fn every_appended_line_is_stored_after_flush() {
    const LINES: i64 = 100_000;
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "node1", Trigger::Manual, at(0))
        .await
        .unwrap();
    let started = crate::clock::Clock::System.instant();
    for i in 0..LINES {
        let line = if i % 2 == 0 {
            LogLine::job(at(i), job.id, LogLevel::Info, format!("line {i}"))
        } else {
            LogLine::system(at(i), LogLevel::Info, format!("line {i}"))
        };
        store.append_log(line);
    }
    store.flush().await.unwrap();
    let elapsed = started.elapsed();
    #[allow(clippy::cast_precision_loss)] // A rate for a person to read.
    let rate = LINES as f64 / elapsed.as_secs_f64();
    eprintln!("stored {LINES} log lines in {elapsed:?} ({rate:.0} lines/s)");
    assert_eq!(count(store.path(), "SELECT COUNT(*) FROM logs"), LINES);
    assert_eq!(
        count(store.path(), "SELECT COUNT(DISTINCT message) FROM logs"),
        LINES
    );
    assert_eq!(store.lost_log_lines(), 0);
}

#[tokio::test]
async fn log_queries_filter_limit_and_order() {
    let (store, _dir) = fresh().await;
    let (a, b) = (instance("a"), instance("b"));
    let a1 = store
        .create_job(&a, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let b1 = store
        .create_job(&b, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let a2 = store
        .create_job(&a, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    for i in 0..5 {
        store.append_log(
            LogLine::job(at(i), a1.id, LogLevel::Info, format!("a1-{i}")).with_target("volume:x"),
        );
        store.append_log(LogLine::job(
            at(i),
            b1.id,
            LogLevel::Info,
            format!("b1-{i}"),
        ));
        store.append_log(LogLine::job(
            at(i),
            a2.id,
            LogLevel::Warn,
            format!("a2-{i}"),
        ));
    }
    store.append_log(LogLine::system(at(10), LogLevel::Debug, "sys-debug"));
    store.append_log(LogLine::system(at(11), LogLevel::Info, "sys-info"));
    store.append_log(LogLine::system(at(12), LogLevel::Warn, "sys-warn").with_instance(a.clone()));
    store.append_log(LogLine::system(at(13), LogLevel::Error, "sys-error"));
    store.flush().await.unwrap();

    let all = store.job_logs(a1.id, None).await.unwrap();
    assert_eq!(messages(&all), ["a1-0", "a1-1", "a1-2", "a1-3", "a1-4"]);
    let first = &all[0];
    assert_eq!(first.line.job_id, Some(a1.id));
    assert_eq!(first.job_iid, Some(1));
    assert_eq!(first.line.instance.as_ref(), Some(&a), "taken from the job");
    assert_eq!(first.line.target.as_deref(), Some("volume:x"));
    assert_eq!(first.line.ts, at(0));
    let tail = store.job_logs(a1.id, Some(2)).await.unwrap();
    assert_eq!(messages(&tail), ["a1-3", "a1-4"]);
    let after_first = store.job_logs_after(a1.id, first.id, 2).await.unwrap();
    assert_eq!(
        messages(&after_first),
        ["a1-1", "a1-2"],
        "the next page, in order"
    );
    let last = all.last().unwrap().id;
    assert!(
        store
            .job_logs_after(a1.id, last, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let instance_tail = store.instance_logs(&a, 3).await.unwrap();
    assert_eq!(messages(&instance_tail), ["a2-3", "a1-4", "a2-4"]);
    assert_eq!(instance_tail[0].job_iid, Some(2));
    assert_eq!(store.instance_logs(&b, 100).await.unwrap().len(), 5);

    let system = store.system_logs(100, None).await.unwrap();
    assert_eq!(
        messages(&system),
        ["sys-debug", "sys-info", "sys-warn", "sys-error"]
    );
    assert_eq!(system[2].line.instance.as_ref(), Some(&a));
    assert_eq!(system[2].job_iid, None);
    let warnings = store.system_logs(100, Some(LogLevel::Warn)).await.unwrap();
    assert_eq!(messages(&warnings), ["sys-warn", "sys-error"]);
    let last = store.system_logs(1, Some(LogLevel::Info)).await.unwrap();
    assert_eq!(messages(&last), ["sys-error"]);
}

#[tokio::test]
async fn job_lists_are_newest_first_and_filtered() {
    let (store, _dir) = fresh().await;
    let (a, b) = (instance("a"), instance("b"));
    let a1 = store
        .create_job(&a, "n", Trigger::Schedule, at(0))
        .await
        .unwrap();
    let b1 = store
        .create_job(&b, "n", Trigger::Schedule, at(1))
        .await
        .unwrap();
    let a2 = store
        .create_job(&a, "n", Trigger::Schedule, at(2))
        .await
        .unwrap();
    store
        .set_job_status(a1.id, JobStatus::Failed, None, at(3))
        .await
        .unwrap();
    let ids = |jobs: Vec<JobRecord>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store.jobs(JobFilter::latest(10)).await.unwrap()),
        [a2.id, b1.id, a1.id]
    );
    assert_eq!(
        ids(store.jobs(JobFilter::latest(2)).await.unwrap()),
        [a2.id, b1.id]
    );
    let only_a = JobFilter {
        instance: Some(a.clone()),
        ..JobFilter::latest(10)
    };
    assert_eq!(ids(store.jobs(only_a).await.unwrap()), [a2.id, a1.id]);
    let failed = JobFilter {
        status: Some(JobStatus::Failed),
        ..JobFilter::latest(10)
    };
    assert_eq!(ids(store.jobs(failed).await.unwrap()), [a1.id]);
    assert_eq!(
        ids(store.instance_jobs(&a, 10).await.unwrap()),
        [a2.id, a1.id]
    );
    assert_eq!(ids(store.instance_jobs(&a, 1).await.unwrap()), [a2.id]);
}

#[tokio::test]
async fn journal_entries_stay_pending_until_resolved() {
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let stopped = store
        .journal_add(
            job.id,
            JournalKind::StoppedContainer,
            "c0ffee",
            "app",
            at(1),
        )
        .await
        .unwrap();
    let staging = store
        .journal_add(
            job.id,
            JournalKind::StagingDir,
            "/backup/a/20270101T000000Z",
            "",
            at(2),
        )
        .await
        .unwrap();
    let pending = store.pending_journal().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].id, stopped);
    assert_eq!(pending[0].kind, JournalKind::StoppedContainer);
    assert_eq!(pending[0].subject, "c0ffee");
    assert_eq!(pending[0].detail, "app");
    assert_eq!(pending[0].created_at, at(1));
    assert_eq!(pending[0].resolved_at, None);

    store.journal_resolve(stopped, at(3)).await.unwrap();
    store.journal_resolve(stopped, at(4)).await.unwrap();
    let pending = store.pending_journal().await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [staging]);
    let resolved_at: i64 = raw(store.path())
        .query_row(
            "SELECT resolved_at FROM journal WHERE id = ?1",
            [stopped.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        resolved_at,
        at(3).timestamp_millis(),
        "the first resolution counts"
    );

    assert!(matches!(
        store.journal_resolve(JournalId(999), at(5)).await,
        Err(StoreError::NoSuchJournalEntry(JournalId(999)))
    ));
    assert!(matches!(
        store
            .journal_add(JobId(999), JournalKind::BackendContainer, "x", "", at(5))
            .await,
        Err(StoreError::NoSuchJob(JobId(999)))
    ));
}

#[tokio::test]
async fn interrupted_jobs_are_aborted_at_start_up() {
    let (store, _dir) = fresh().await;
    let a = instance("a");
    let queued = store
        .create_job(&a, "n", Trigger::Schedule, at(0))
        .await
        .unwrap();
    let running = store
        .create_job(&a, "n", Trigger::Schedule, at(0))
        .await
        .unwrap();
    let finished = store
        .create_job(&a, "n", Trigger::Schedule, at(0))
        .await
        .unwrap();
    store
        .set_job_status(running.id, JobStatus::InProgress, None, at(1))
        .await
        .unwrap();
    store
        .set_job_status(finished.id, JobStatus::Success, None, at(2))
        .await
        .unwrap();

    let aborted = store.abort_interrupted(at(100)).await.unwrap();
    assert_eq!(
        aborted.iter().map(|j| j.id).collect::<Vec<_>>(),
        [queued.id, running.id]
    );
    for job in &aborted {
        assert_eq!(job.status, JobStatus::Aborted);
        assert_eq!(job.completed_at, Some(at(100)));
        assert!(job.message.as_deref().unwrap().contains("interrupted"));
    }
    assert_eq!(aborted[1].started_at, Some(at(1)));
    let untouched = store.job(finished.id).await.unwrap().unwrap();
    assert_eq!(untouched.status, JobStatus::Success);
    assert!(store.abort_interrupted(at(200)).await.unwrap().is_empty());
}

#[tokio::test]
async fn pruning_deletes_only_old_lines_and_never_jobs() {
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    for i in 0..10 {
        store.append_log(LogLine::job(at(i), job.id, LogLevel::Info, format!("{i}")));
        store.append_log(LogLine::system(at(i), LogLevel::Info, format!("s{i}")));
    }
    store.flush().await.unwrap();
    assert_eq!(store.prune_logs(at(6)).await.unwrap(), 12);
    let left = store.job_logs(job.id, None).await.unwrap();
    assert_eq!(messages(&left), ["6", "7", "8", "9"]);
    assert_eq!(store.system_logs(100, None).await.unwrap().len(), 4);
    assert!(store.job(job.id).await.unwrap().is_some());
    assert_eq!(store.prune_logs(at(6)).await.unwrap(), 0);
}

#[tokio::test]
async fn history_has_the_last_success_and_the_last_outcome() {
    let (store, _dir) = fresh().await;
    let (a, b, c) = (instance("a"), instance("b"), instance("c"));
    let finish = |who: InstanceId, status: JobStatus, end: i64| {
        let store = store.clone();
        async move {
            let job = store
                .create_job(&who, "n", Trigger::Schedule, at(0))
                .await
                .unwrap();
            store
                .set_job_status(job.id, JobStatus::InProgress, None, at(0))
                .await
                .unwrap();
            store
                .set_job_status(job.id, status, None, at(end))
                .await
                .unwrap();
        }
    };
    finish(a.clone(), JobStatus::Success, 10).await;
    finish(a.clone(), JobStatus::Failed, 20).await;
    finish(b.clone(), JobStatus::Failed, 5).await;
    finish(b.clone(), JobStatus::Success, 30).await;
    finish(c.clone(), JobStatus::PartialSuccess, 7).await;
    // Unfinished jobs do not count.
    store
        .create_job(&a, "n", Trigger::Manual, at(40))
        .await
        .unwrap();

    let history = store.history().await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[&a].last_success, Some(at(10)));
    assert_eq!(history[&a].last_finished, Some((at(20), false)));
    assert_eq!(history[&b].last_success, Some(at(30)));
    assert_eq!(history[&b].last_finished, Some((at(30), true)));
    assert_eq!(history[&c].last_success, None);
    assert_eq!(history[&c].last_finished, Some((at(7), false)));
}

#[tokio::test]
async fn a_line_of_an_unknown_job_is_kept_as_a_system_line() {
    let (store, _dir) = fresh().await;
    store.append_log(LogLine::job(at(0), JobId(404), LogLevel::Warn, "orphan"));
    store.flush().await.unwrap();
    let system = store.system_logs(10, None).await.unwrap();
    assert_eq!(
        messages(&system),
        ["(job 404 is not in the job store) orphan"]
    );
}

#[tokio::test]
async fn the_tracing_layer_routes_job_and_system_events() {
    let (store, _dir) = fresh().await;
    let nightly = instance("nightly");
    let job = store
        .create_job(&nightly, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let later = store
        .create_job(&nightly, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(store.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // Explicit targets: events of `marina::store…` (this test module's own path) are
        // deliberately not stored.
        let job_span = tracing::info_span!("job", job_id = job.id.0, instance = "nightly");
        let entered = job_span.enter();
        tracing::info!(target: "marina::executor", "Backup started.");
        {
            let target_span = tracing::info_span!("target", target = "volume:app-data");
            let _target = target_span.enter();
            tracing::info!(target: "marina::executor", files = 3, path = "/a b", "Copied the volume.");
            tracing::debug!(target: "marina::executor", "Debug lines of jobs are kept.");
        }
        tracing::trace!(target: "marina::executor", "Trace lines are not.");
        tracing::info!(target: "marina::store::writer", "Ignored: the store's own event.");
        drop(entered);

        tracing::warn!(target: "marina::docker", error = "EOF", "The Docker event stream dropped.");
        tracing::info!(target: "marina::config", instance = "nightly", "Config reloaded.");
        tracing::debug!(target: "marina::docker", "System DEBUG lines are not stored.");

        // A job id recorded after the span was created.
        let late = tracing::info_span!("job", job_id = tracing::field::Empty);
        late.record("job_id", later.id.0);
        let _late = late.enter();
        tracing::error!(target: "marina::executor", "Backend failed.");
    });
    store.flush().await.unwrap();

    let lines = store.job_logs(job.id, None).await.unwrap();
    assert_eq!(
        messages(&lines),
        [
            "Backup started.",
            "Copied the volume. files=3 path=\"/a b\"",
            "Debug lines of jobs are kept."
        ]
    );
    assert_eq!(lines[0].line.target, None);
    assert_eq!(lines[1].line.target.as_deref(), Some("volume:app-data"));
    assert_eq!(lines[1].line.instance.as_ref(), Some(&nightly));
    assert_eq!(lines[1].line.level, LogLevel::Info);
    assert_eq!(lines[2].line.level, LogLevel::Debug);

    let system = store.system_logs(10, None).await.unwrap();
    assert_eq!(
        messages(&system),
        [
            "The Docker event stream dropped. error=EOF",
            "Config reloaded."
        ]
    );
    assert_eq!(system[0].line.level, LogLevel::Warn);
    assert_eq!(system[1].line.instance.as_ref(), Some(&nightly));

    let late = store.job_logs(later.id, None).await.unwrap();
    assert_eq!(messages(&late), ["Backend failed."]);
    assert_eq!(late[0].line.level, LogLevel::Error);
}

#[tokio::test]
async fn records_serialize_in_camel_case() {
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "n", Trigger::CatchUp, at(0))
        .await
        .unwrap();
    let json = serde_json::to_value(&job).unwrap();
    assert_eq!(json["trigger"], "catchUp");
    assert_eq!(json["status"], "scheduled");
    assert_eq!(json["targetsTotal"], 0);
    assert!(json["completedAt"].is_null());
    store.append_log(LogLine::job(at(0), job.id, LogLevel::Warn, "x"));
    store.flush().await.unwrap();
    let log = &store.job_logs(job.id, None).await.unwrap()[0];
    let json = serde_json::to_value(log).unwrap();
    assert_eq!(json["level"], "WARN");
    assert_eq!(json["jobId"], job.id.0);
    assert_eq!(json["jobIid"], 1);
    assert_eq!(json["instance"], "a");
}

#[tokio::test]
async fn writes_after_the_writer_stopped_fail_clearly() {
    let (store, _dir) = fresh().await;
    let path: PathBuf = store.path().to_path_buf();
    // Simulate a dead writer by stopping it behind the handle's back.
    store.inner.commands.send(Command::Shutdown).unwrap();
    // Wait until the writer thread has exited and dropped its inbox.
    loop {
        let (probe, _) = tokio::sync::oneshot::channel();
        if store.inner.commands.send(Command::Flush(probe)).is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let error = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::WriterGone { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()));
    store.append_log(LogLine::system(at(0), LogLevel::Info, "lost"));
    assert_eq!(store.lost_log_lines(), 1);
}

#[tokio::test]
async fn only_a_job_that_never_started_can_be_deleted() {
    let (store, _dir) = fresh().await;
    let refused = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    store.delete_job(refused.id).await.unwrap();
    assert_eq!(store.job(refused.id).await.unwrap(), None);
    let next = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(1))
        .await
        .unwrap();
    assert_eq!(next.iid, 1, "a deleted last record frees its number");
    store
        .set_job_status(next.id, JobStatus::InProgress, None, at(2))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_job(next.id).await,
        Err(StoreError::Started {
            status: JobStatus::InProgress,
            ..
        })
    ));
    assert!(store.job(next.id).await.unwrap().is_some());
    assert!(matches!(
        store.delete_job(JobId(999)).await,
        Err(StoreError::NoSuchJob(JobId(999)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_lines_waits_for_room_and_every_line_is_stored() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = QUEUE_CAPACITY;
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    // Hold the writer inside a write, as a slow disk would, so the queue fills up.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let stuck = store.clone();
    let blocked_write = tokio::spawn(async move {
        stuck
            .write("wait for the test".to_owned(), false, move |_| {
                let _ = held.recv();
                Ok(())
            })
            .await
    });
    let sent = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, sent) = (store.clone(), Arc::clone(&sent));
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let line = LogLine::job(at(0), job.id, LogLevel::Info, format!("t{t} {i}"));
                    store.append_log(line);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let total = u64::try_from(THREADS * PER_THREAD).unwrap();
    // The senders fill the queue to its bound and then wait; they never get further while
    // the writer is held.
    for _ in 0..400 {
        if store.queued() >= QUEUE_CAPACITY {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        store.queued(),
        QUEUE_CAPACITY,
        "the queue stops at its bound"
    );
    assert!(
        sent.load(Ordering::Relaxed) < total,
        "the senders wait for room instead of queueing without limit"
    );
    release.send(()).unwrap();
    for flood in floods {
        flood.join().unwrap();
    }
    blocked_write.await.unwrap().unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        count(
            store.path(),
            &format!(
                "SELECT COUNT(DISTINCT message) FROM logs WHERE job_id = {}",
                job.id.0
            )
        ),
        i64::try_from(total).unwrap()
    );
    assert_eq!(store.lost_log_lines(), 0);
    assert!(store.queued() <= QUEUE_CAPACITY);
}

#[tokio::test]
async fn events_on_the_writer_thread_are_never_queued_for_it() {
    let (store, _dir) = fresh().await;
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(store.clone()));
    let dispatch = tracing::Dispatch::new(subscriber);
    // An event from inside a write runs on the writer thread; with a full queue, storing it
    // would wait for room only the writer can make.
    store
        .write("log from the writer".to_owned(), false, move |_| {
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(target: "marina::elsewhere", "Said on the writer thread.");
            });
            Ok(())
        })
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(count(store.path(), "SELECT COUNT(*) FROM logs"), 0);
}
