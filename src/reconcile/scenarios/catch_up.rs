//! Catching up a run missed while Marina was down — once, and only when it should.

use super::*;

fn succeeded_at(at: &str) -> BTreeMap<InstanceId, History> {
    let at = utc(at);
    BTreeMap::from([(
        id("i0"),
        History {
            last_success: Some(at),
            last_finished: Some((at, true)),
        },
    )])
}

#[tokio::test(start_paused = true)]
async fn a_missed_run_is_caught_up_once_at_start_up() {
    let mut s = Scenario::start("2027-01-05T12:00:00Z", succeeded_at("2027-01-03T02:10:00Z"));
    s.send(config(&instances(1, "0 2 * * *", ""))).await;
    s.send(listing()).await;
    assert_eq!(
        s.orders(),
        [(
            "i0".into(),
            utc("2027-01-05T12:00:00.001Z"),
            Trigger::CatchUp
        )]
    );
    s.finish("i0").await;
    s.send(listing()).await;
    assert!(s.orders().is_empty(), "caught up once, not again");
}

fn failed_at(at: &str) -> BTreeMap<InstanceId, History> {
    BTreeMap::from([(
        id("i0"),
        History {
            last_success: None,
            last_finished: Some((utc(at), false)),
        },
    )])
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_never_succeeded_catches_up_a_missed_run() {
    let mut s = Scenario::start("2027-01-05T12:00:00Z", failed_at("2027-01-03T02:10:00Z"));
    s.send(config(&instances(1, "0 2 * * *", ""))).await;
    s.send(listing()).await;
    assert_eq!(
        s.orders(),
        [(
            "i0".into(),
            utc("2027-01-05T12:00:00.001Z"),
            Trigger::CatchUp
        )]
    );

    // Its last attempt came after the last scheduled time: nothing was missed.
    let mut tried = Scenario::start("2027-01-05T12:00:00Z", failed_at("2027-01-05T02:10:00Z"));
    tried.send(config(&instances(1, "0 2 * * *", ""))).await;
    tried.send(listing()).await;
    assert!(
        tried.orders().is_empty(),
        "the last scheduled run was tried"
    );
}

#[tokio::test(start_paused = true)]
async fn no_catch_up_when_recent_new_or_disabled() {
    let mut recent = Scenario::start("2027-01-05T12:00:00Z", succeeded_at("2027-01-05T02:10:00Z"));
    recent.send(config(&instances(1, "0 2 * * *", ""))).await;
    recent.send(listing()).await;
    assert!(
        recent.orders().is_empty(),
        "the last scheduled run succeeded"
    );

    let mut new = Scenario::start("2027-01-05T12:00:00Z", BTreeMap::new());
    new.send(config(&instances(1, "0 2 * * *", ""))).await;
    new.send(listing()).await;
    assert!(
        new.orders().is_empty(),
        "an instance without history waits for its schedule"
    );

    let mut disabled =
        Scenario::start("2027-01-05T12:00:00Z", succeeded_at("2027-01-01T02:10:00Z"));
    disabled
        .send(config(&instances(1, "0 2 * * *", "catchUp: false\n")))
        .await;
    disabled.send(listing()).await;
    assert!(disabled.orders().is_empty());
}
