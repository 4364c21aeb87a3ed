//! Black-box tests of the job store: what is written survives a restart, and concurrent
//! handles lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use marina::model::InstanceId;
use marina::reconcile::queue::Trigger;
use marina::store::{JobFilter, JobStatus, JournalKind, LogLevel, LogLine, Store};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-06-01T02:00:00Z")
        .unwrap()
        .to_utc()
        + TimeDelta::seconds(seconds)
}

fn instance(id: &str) -> InstanceId {
    InstanceId::parse(id).unwrap()
}

#[tokio::test]
async fn everything_written_is_there_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/marina.db");
    let nightly = instance("nightly-s3");

    let store = Store::open(&path).await.unwrap();
    let job = store
        .create_job(&nightly, "node-1", Trigger::Schedule, at(0))
        .await
        .unwrap();
    store
        .set_job_status(job.id, JobStatus::InProgress, None, at(1))
        .await
        .unwrap();
    let entry = store
        .journal_add(
            job.id,
            JournalKind::StoppedContainer,
            "abc123",
            "app",
            at(2),
        )
        .await
        .unwrap();
    for i in 0..1000 {
        store.append_log(
            LogLine::job(at(3), job.id, LogLevel::Info, format!("copied file {i}"))
                .with_target("volume:app-data"),
        );
    }
    store.append_log(LogLine::system(
        at(4),
        LogLevel::Warn,
        "Docker reconnected.",
    ));
    store.set_job_targets(job.id, 2, 2, at(5)).await.unwrap();
    let finished = store
        .set_job_status(
            job.id,
            JobStatus::Success,
            Some("2 targets backed up".into()),
            at(6),
        )
        .await
        .unwrap();
    // A second job is cut off by the "crash" (the store is dropped while it runs).
    let cut_off = store
        .create_job(&nightly, "node-1", Trigger::Manual, at(7))
        .await
        .unwrap();
    store
        .set_job_status(cut_off.id, JobStatus::InProgress, None, at(8))
        .await
        .unwrap();
    // Dropping without flushing: the drop itself must commit what was queued.
    drop(store);

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.job(job.id).await.unwrap(), Some(finished));
    let logs = store.job_logs(job.id, None).await.unwrap();
    assert_eq!(logs.len(), 1000);
    assert_eq!(logs[0].line.message, "copied file 0");
    assert_eq!(logs[999].line.message, "copied file 999");
    assert_eq!(logs[0].line.target.as_deref(), Some("volume:app-data"));
    let system = store.system_logs(10, None).await.unwrap();
    assert_eq!(system.len(), 1);
    assert_eq!(system[0].line.message, "Docker reconnected.");
    let pending = store.pending_journal().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, entry);
    assert_eq!(pending[0].subject, "abc123");

    let aborted = store.abort_interrupted(at(100)).await.unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!(aborted[0].id, cut_off.id);
    assert_eq!(aborted[0].status, JobStatus::Aborted);
    let history = store.history().await.unwrap();
    assert_eq!(history[&nightly].last_success, Some(at(6)));
    assert_eq!(history[&nightly].last_finished, Some((at(100), false)));
    // The next job continues the instance's numbering.
    let next = store
        .create_job(&nightly, "node-1", Trigger::CatchUp, at(101))
        .await
        .unwrap();
    assert_eq!(next.iid, 3);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_handles_lose_nothing() {
    const TASKS: usize = 32;
    const JOBS_PER_TASK: usize = 5;
    const LINES_PER_JOB: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path().join("marina.db")).await.unwrap();
    let second = first.clone();

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = if task % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let who = instance(&format!("inst-{}", task % 4));
        tasks.spawn(async move {
            let mut jobs = Vec::new();
            for _ in 0..JOBS_PER_TASK {
                let job = store
                    .create_job(&who, "node", Trigger::Schedule, at(0))
                    .await
                    .unwrap();
                store
                    .set_job_status(job.id, JobStatus::InProgress, None, at(1))
                    .await
                    .unwrap();
                for line in 0..LINES_PER_JOB {
                    store.append_log(LogLine::job(
                        at(2),
                        job.id,
                        LogLevel::Info,
                        format!("task {task} line {line}"),
                    ));
                    if line % 50 == 0 {
                        // Let other tasks interleave with this one.
                        tokio::task::yield_now().await;
                    }
                }
                // Reads run beside the writes.
                store.job(job.id).await.unwrap().unwrap();
                store
                    .set_job_status(job.id, JobStatus::Success, None, at(3))
                    .await
                    .unwrap();
                jobs.push(job);
            }
            jobs
        });
    }
    let mut jobs = Vec::new();
    while let Some(done) = tasks.join_next().await {
        jobs.extend(done.unwrap());
    }
    first.flush().await.unwrap();

    assert_eq!(jobs.len(), TASKS * JOBS_PER_TASK);
    // Per instance, job numbers are exactly 1..=n with no gaps or duplicates.
    let mut iids: BTreeMap<InstanceId, Vec<i64>> = BTreeMap::new();
    for job in &jobs {
        iids.entry(job.instance.clone()).or_default().push(job.iid);
    }
    for (who, mut numbers) in iids {
        numbers.sort_unstable();
        let expected: Vec<i64> = (1..=i64::try_from(numbers.len()).unwrap()).collect();
        assert_eq!(numbers, expected, "{who}");
    }
    for job in &jobs {
        let lines = second.job_logs(job.id, None).await.unwrap();
        assert_eq!(lines.len(), LINES_PER_JOB, "job {}", job.id);
    }
    let all = second
        .jobs(JobFilter {
            status: Some(JobStatus::Success),
            ..JobFilter::latest(1000)
        })
        .await
        .unwrap();
    assert_eq!(all.len(), TASKS * JOBS_PER_TASK);
    assert_eq!(first.lost_log_lines(), 0);
    drop(first);
    second.close().await.unwrap();
}
