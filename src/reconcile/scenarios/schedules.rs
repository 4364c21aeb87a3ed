//! When jobs start: not before the first config and listing, once per due run, within
//! `maxConcurrentJobs`, one at a time per instance, across clock changes.

use super::*;

#[tokio::test(start_paused = true)]
async fn nothing_is_decided_before_the_first_listing() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(1, "* * * * *", ""))).await;
    s.pass(3 * MINUTE).await;
    assert!(s.orders().is_empty(), "no job before Docker was listed");
    let snapshot = s.snapshot();
    assert!(!snapshot.ready);
    assert_eq!(snapshot.instances[0].next_run_at, None);
    assert_eq!(
        snapshot.instances[0].conditions[1].reason,
        "WaitingForDocker"
    );

    s.send(listing()).await;
    assert!(s.snapshot().ready);
    let next = s.snapshot().instances[0].next_run_at.unwrap();
    assert_eq!(
        next,
        utc("2027-01-01T00:04:00Z"),
        "next whole minute after the listing"
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_decided_before_the_first_config() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(listing()).await;
    s.pass(2 * MINUTE).await;
    assert!(!s.snapshot().ready);
    assert!(s.orders().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_due_instance_is_queued_exactly_once() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(1, "0 * * * *", ""))).await;
    s.send(listing()).await;
    s.pass(30 * MINUTE).await;
    assert!(s.orders().is_empty());
    s.pass(30 * MINUTE).await;
    // More messages at the due moment make the controller reconcile again, not queue again.
    for _ in 0..5 {
        s.send(listing()).await;
    }
    assert_eq!(
        s.orders(),
        [("i0".into(), utc("2027-01-01T01:00:00Z"), Trigger::Schedule)]
    );
    assert_eq!(
        s.snapshot().instances[0].next_run_at,
        Some(utc("2027-01-01T02:00:00Z"))
    );
}

#[tokio::test(start_paused = true)]
async fn running_jobs_never_exceed_max_concurrent_jobs() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(3, "0 * * * *", "maxConcurrentJobs: 2\n")))
        .await;
    s.send(listing()).await;
    s.pass(60 * MINUTE).await;
    let started: Vec<String> = s.orders().into_iter().map(|o| o.0).collect();
    assert_eq!(
        started,
        ["i0", "i1"],
        "two of three start; the earliest due (then by id) first"
    );
    assert_eq!(s.snapshot().jobs_running, 2);
    assert_eq!(s.snapshot().jobs_waiting, 1);
    s.finish("i1").await;
    let started: Vec<String> = s.orders().into_iter().map(|o| o.0).collect();
    assert_eq!(started, ["i2"]);
    assert_eq!(s.snapshot().jobs_running, 2);
}

#[tokio::test(start_paused = true)]
async fn one_instance_never_runs_twice_at_once() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&instances(1, "* * * * *", "maxConcurrentJobs: 4\n")))
        .await;
    s.send(listing()).await;
    s.pass(MINUTE).await;
    assert_eq!(s.orders().len(), 1);
    // The job takes five minutes: the runs due meanwhile wait as one queued job.
    s.pass(5 * MINUTE).await;
    assert!(s.orders().is_empty());
    let snapshot = s.snapshot();
    assert!(snapshot.instances[0].running);
    assert_eq!(
        snapshot.instances[0].queued.unwrap().due,
        utc("2027-01-01T00:02:00Z"),
        "earliest due wins"
    );
    s.finish("i0").await;
    assert_eq!(
        s.orders(),
        [("i0".into(), utc("2027-01-01T00:02:00Z"), Trigger::Schedule)]
    );
}

#[tokio::test(start_paused = true)]
async fn spring_forward_fires_once_right_after_the_gap() {
    // 2027-03-28 02:00 CET → 03:00 CEST: 02:30 Berlin does not exist that day.
    let mut s = Scenario::start("2027-03-27T12:00:00Z", BTreeMap::new());
    s.send(config(&instances(
        1,
        "30 2 * * *",
        "timezone: Europe/Berlin\nmaxConcurrentJobs: 1\n",
    )))
    .await;
    s.send(listing()).await;
    let mut fired = Vec::new();
    for _ in 0..3 {
        s.pass(Duration::from_hours(24)).await;
        for order in s.orders() {
            fired.push(order.1);
            s.finish("i0").await;
        }
    }
    assert_eq!(
        fired,
        [
            utc("2027-03-28T01:00:00Z"),
            utc("2027-03-29T00:30:00Z"),
            utc("2027-03-30T00:30:00Z")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn fall_back_fires_once_in_the_repeated_hour() {
    // 2027-10-31 03:00 CEST → 02:00 CET: 02:30 Berlin happens twice that night.
    let mut s = Scenario::start("2027-10-30T12:00:00Z", BTreeMap::new());
    s.send(config(&instances(
        1,
        "30 2 * * *",
        "timezone: Europe/Berlin\n",
    )))
    .await;
    s.send(listing()).await;
    let mut fired = Vec::new();
    for _ in 0..2 {
        s.pass(Duration::from_hours(24)).await;
        for order in s.orders() {
            fired.push(order.1);
            s.finish("i0").await;
        }
    }
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert_eq!(fired[0].date_naive().to_string(), "2027-10-31");
    assert_eq!(fired[1], utc("2027-11-01T01:30:00Z"));
}
