//! Job records: numbering, status changes and their timestamps, lists, history, deletion.

use super::*;

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
    let latest = store.latest_backup(&a).await.unwrap().unwrap();
    assert_eq!(latest.iid, 3);
    assert!(store.latest_backup(&instance("c")).await.unwrap().is_none());
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

#[tokio::test]
async fn restore_jobs_keep_their_request_and_count_neither_as_the_latest_backup_nor_in_history() {
    let (store, _dir) = fresh().await;
    let a = instance("a");
    let backup = store
        .create_job(&a, "node1", Trigger::Schedule, at(0))
        .await
        .unwrap();
    assert_eq!(backup.kind, crate::model::JobKind::Backup);
    assert_eq!(backup.restore, None);
    for (status, t) in [(JobStatus::InProgress, 1), (JobStatus::Success, 2)] {
        store
            .set_job_status(backup.id, status, None, at(t))
            .await
            .unwrap();
    }
    let request: crate::model::RestoreRequest = serde_json::from_str(
        r#"{"target": "volume:data", "snapshot": "0123abcd", "inPlace": true}"#,
    )
    .unwrap();
    let restore = store
        .record_job(&a, "node1", NewJob::Restore(request.clone()), at(3))
        .await
        .unwrap();
    assert_eq!(
        (restore.kind, restore.iid, restore.trigger),
        (crate::model::JobKind::Restore, 2, Trigger::Manual)
    );
    for (status, t) in [(JobStatus::InProgress, 4), (JobStatus::Failed, 5)] {
        store
            .set_job_status(restore.id, status, None, at(t))
            .await
            .unwrap();
    }
    let read = store.job(restore.id).await.unwrap().unwrap();
    assert_eq!(read.restore, Some(request));
    assert_eq!(
        store.latest_backup(&a).await.unwrap().unwrap().id,
        backup.id
    );
    let history = store.history().await.unwrap();
    assert_eq!(history[&a].last_success, Some(at(2)));
    assert_eq!(
        history[&a].last_finished,
        Some((at(2), true)),
        "a failed restore is no failed backup"
    );
}
