//! Reloads and run-now requests: what changes in the queue, and what is refused.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_reload_reschedules_changed_instances_and_drops_removed_ones() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(2, "0 * * * *", "maxConcurrentJobs: 1\n")))
        .await;
    s.send(listing()).await;
    s.pass(60 * MINUTE).await;
    assert_eq!(s.orders().len(), 1, "i0 runs, i1 waits");
    assert!(s.snapshot().instance("i1").unwrap().queued.is_some());
    let created = s.snapshot().instance("i0").unwrap().created_at;

    // i1 removed, i0's schedule changed, i2 added.
    let text = "instances:\n  - id: i0\n    repository: /srv/r0\n    schedule: '30 * * * *'\n    env: {RESTIC_PASSWORD: x}\n  - id: i2\n    repository: /srv/r2\n    schedule: '0 3 * * *'\n    env: {RESTIC_PASSWORD: x}\n";
    s.send(config(text)).await;
    let snapshot = s.snapshot();
    assert_eq!(snapshot.config.generation, 2);
    assert!(snapshot.instance("i1").is_none());
    assert_eq!(
        snapshot.jobs_waiting, 0,
        "the removed instance's queued job is dropped"
    );
    let i0 = snapshot.instance("i0").unwrap();
    assert_eq!(i0.next_run_at, Some(utc("2027-01-01T01:30:00Z")));
    assert_eq!(i0.created_at, created);
    assert!(i0.updated_at > created);
    assert!(i0.running, "a reload never touches a running job");
    assert_eq!(
        snapshot.instance("i2").unwrap().next_run_at,
        Some(utc("2027-01-01T03:00:00Z"))
    );

    s.send(Message::ConfigRejected {
        diagnostics: Vec::new(),
    })
    .await;
    let snapshot = s.snapshot();
    assert_eq!(
        snapshot.config.generation, 2,
        "a rejected file changes nothing"
    );
    assert!(!snapshot.config.last_reload.as_ref().unwrap().accepted);
    assert_eq!(snapshot.instances.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_manual_trigger_queues_now() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(1, "0 3 * * *", ""))).await;
    s.send(listing()).await;
    s.send(Message::Command(crate::reconcile::Command::Trigger {
        instance: id("i0"),
        job: None,
        reply: None,
    }))
    .await;
    assert_eq!(
        s.orders(),
        [(
            "i0".into(),
            utc("2027-01-01T00:00:30.002Z"),
            Trigger::Manual
        )]
    );
    s.send(Message::Command(crate::reconcile::Command::Trigger {
        instance: id("unknown"),
        job: None,
        reply: None,
    }))
    .await;
    assert!(s.orders().is_empty());
}

/// Sends a run-now request without letting the controller run, so that several land in one
/// batch; returns where its answer comes.
fn request_run(s: &Scenario, instance: &str) -> tokio::sync::oneshot::Receiver<TriggerAnswer> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    s.inbox
        .try_send(Message::Command(crate::reconcile::Command::Trigger {
            instance: id(instance),
            job: None,
            reply: Some(Reply(reply)),
        }))
        .unwrap();
    answer
}

#[tokio::test(start_paused = true)]
async fn of_concurrent_run_now_requests_the_reconciler_accepts_exactly_one() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(1, "0 3 * * *", ""))).await;
    s.send(listing()).await;
    // Ten requests waiting in the inbox together, as concurrent API calls would be.
    let answers: Vec<_> = (0..10).map(|_| request_run(&s, "i0")).collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut got = Vec::new();
    for answer in answers {
        got.push(answer.await.unwrap());
    }
    assert_eq!(got[0], TriggerAnswer::Accepted);
    assert!(
        got[1..].iter().all(|a| *a == TriggerAnswer::Queued),
        "{got:?}"
    );
    assert_eq!(s.orders().len(), 1, "exactly one run is ordered");
    // Running now: still refused, until it finished.
    let running = request_run(&s, "i0");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(running.await.unwrap(), TriggerAnswer::Running);
    s.send(Message::JobFinished {
        instance: id("i0"),
        kind: crate::model::JobKind::Backup,
        succeeded: true,
    })
    .await;
    let again = request_run(&s, "i0");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(again.await.unwrap(), TriggerAnswer::Accepted);
    let unknown = request_run(&s, "unknown");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(unknown.await.unwrap(), TriggerAnswer::NotConfigured);
}

#[tokio::test(start_paused = true)]
async fn run_now_before_the_first_listing_is_refused() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(1, "0 3 * * *", ""))).await;
    let answer = request_run(&s, "i0");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(answer.await.unwrap(), TriggerAnswer::NotReady);
    s.send(listing()).await;
    assert!(s.orders().is_empty(), "a refused request queues nothing");
}
