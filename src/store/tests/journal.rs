//! The crash journal, and what start-up does with what a crash left behind.

use super::*;

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
