//! Scenario tests of the controller: the real controller task, an in-memory stand-in for
//! Docker (messages into the inbox) and for the executor (a channel of job orders), and
//! paused tokio time driving a virtual wall clock — fast and deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::queue::Trigger;
use super::state::History;
use super::{Controller, Message, Order, Reply, Snapshot, State, TriggerAnswer};
use crate::clock::Clock;
use crate::config::{self, Environment};
use crate::metrics::Metrics;
use crate::model::{
    ContainerInfo, ContainerState, DbKind, InstanceId, Inventory, InventoryChange, ProbeError,
    VolumeInfo,
};

struct NoEnv;

impl Environment for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn hostname(&self) -> Option<String> {
        Some("scenario-node".into())
    }
}

fn config(text: &str) -> Message {
    let loaded = config::load_str(text, "scenario.yml", &NoEnv).unwrap();
    Message::ConfigLoaded {
        config: Arc::new(loaded.config),
        warnings: loaded.warnings,
    }
}

/// `n` restic instances named `i0`, `i1`, … on `schedule`, plus extra global lines.
fn instances(n: usize, schedule: &str, globals: &str) -> String {
    let list = (0..n).fold(String::new(), |mut list, i| {
        let _ = write!(
            list,
            "  - id: i{i}\n    repository: /srv/r{i}\n    schedule: '{schedule}'\n    env: {{RESTIC_PASSWORD: x}}\n"
        );
        list
    });
    format!("instances:\n{list}{globals}")
}

fn listing() -> Message {
    let mut inventory = Inventory::default();
    let volume = VolumeInfo {
        name: "data".into(),
        driver: "local".into(),
        mountpoint: None,
        labels: BTreeMap::new(),
    };
    inventory.volumes.insert(volume.name.clone(), volume);
    Message::Inventory(InventoryChange::Listed(inventory))
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn id(text: &str) -> InstanceId {
    InstanceId::parse(text).unwrap()
}

/// A running controller with its inbox, its snapshots and the orders it gives.
struct Scenario {
    inbox: mpsc::Sender<Message>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    orders: mpsc::UnboundedReceiver<Order>,
    shutdown: CancellationToken,
}

impl Scenario {
    fn start(at: &str, history: BTreeMap<InstanceId, History>) -> Self {
        let clock = Clock::virtual_at(utc(at));
        let (inbox, receiver) = mpsc::channel(64);
        let (executor, orders) = mpsc::unbounded_channel();
        let (controller, snapshots) = Controller::new(
            State::new(history),
            receiver,
            Some(executor),
            clock,
            Metrics::new().unwrap(),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(controller.run(shutdown.clone()));
        Self {
            inbox,
            snapshots,
            orders,
            shutdown,
        }
    }

    async fn send(&self, message: Message) {
        self.inbox.send(message).await.unwrap();
        // Let the controller take it in and publish.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// Lets virtual time pass; the controller wakes for whatever falls due meanwhile.
    async fn pass(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// Orders given so far and not yet taken.
    fn orders(&mut self) -> Vec<(String, DateTime<Utc>, Trigger)> {
        let mut orders = Vec::new();
        while let Ok(order) = self.orders.try_recv() {
            if let Order::Run(order) = order {
                orders.push((
                    order.instance.id.to_string(),
                    order.job.due,
                    order.job.trigger,
                ));
            }
        }
        orders
    }

    /// The containers the controller asked to probe since the last call (job orders given
    /// meanwhile are dropped).
    fn probes(&mut self) -> Vec<String> {
        let mut probes = Vec::new();
        while let Ok(order) = self.orders.try_recv() {
            if let Order::Probe { container_id, .. } = order {
                probes.push(container_id);
            }
        }
        probes
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    async fn finish(&self, instance: &str) {
        self.send(Message::JobFinished {
            instance: id(instance),
            succeeded: true,
        })
        .await;
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

const MINUTE: Duration = Duration::from_mins(1);

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
    s.send(Message::Command(super::Command::Trigger {
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
    s.send(Message::Command(super::Command::Trigger {
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
        .try_send(Message::Command(super::Command::Trigger {
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

// ---------------------------------------------------------------------------------------
// database containers whose image names no database

/// Instance `i0` backing up the database in container `db`, its kind left to detection.
const DB_CONFIG: &str = "instances:\n  - id: i0\n    repository: /srv/r\n    schedule: '0 3 * * *'\n    env: {RESTIC_PASSWORD: x}\n    targets:\n      - db: db\n";

fn db_container(id: &str, image: &str, state: ContainerState) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        name: "db".into(),
        image: image.into(),
        labels: BTreeMap::new(),
        state,
        mounts: Vec::new(),
    }
}

fn listing_with(containers: &[ContainerInfo]) -> Message {
    let mut inventory = Inventory::default();
    for c in containers {
        inventory.containers.insert(c.id.clone(), c.clone());
    }
    Message::Inventory(InventoryChange::Listed(inventory))
}

/// The `Ready` condition of `i0`'s db target: (status, reason, message) and its kind.
fn db_ready(s: &Scenario) -> (String, &'static str, String, Option<DbKind>) {
    let snapshot = s.snapshot();
    let target = &snapshot.instances[0].targets[0];
    let ready = &target.conditions[0];
    (
        format!("{:?}", ready.status),
        ready.reason,
        ready.message.clone(),
        target.db_kind,
    )
}

fn probed(container_id: &str, tools: &[&str]) -> Message {
    Message::DbProbed {
        container_id: container_id.into(),
        result: Ok(DbKind::from_tools(tools).map(|(kind, tool)| (kind, tool.to_owned()))),
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_container_named_like_no_database_is_probed_once_and_shows_its_kind() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    let db = db_container("c1", "myorg/db:1", ContainerState::Running);
    s.send(listing_with(std::slice::from_ref(&db))).await;
    assert_eq!(s.probes(), ["c1"]);
    let (status, reason, message, kind) = db_ready(&s);
    assert_eq!(
        (status.as_str(), reason, kind),
        ("Unknown", "DbKindProbing", None)
    );
    assert!(message.contains("looking for the dump tools"), "{message}");

    // While the probe is out, more news of the world does not ask again.
    s.send(listing_with(std::slice::from_ref(&db))).await;
    s.send(Message::Inventory(InventoryChange::ContainerUpdated(
        db.clone(),
    )))
    .await;
    s.pass(10 * MINUTE).await;
    assert!(s.probes().is_empty(), "probed once per container");

    s.send(probed("c1", &["pg_dumpall"])).await;
    let (status, reason, message, kind) = db_ready(&s);
    assert_eq!(
        (status.as_str(), reason, kind),
        ("True", "DbKindFromProbe", Some(DbKind::Postgres))
    );
    assert_eq!(
        message,
        "kind postgres: the image myorg/db:1 of db does not name a database; found pg_dumpall in the container"
    );
    s.send(listing_with(&[db])).await;
    assert!(s.probes().is_empty(), "the answer is kept");
}

#[tokio::test(start_paused = true)]
async fn tools_of_several_engines_or_none_make_the_target_invalid() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    s.send(listing_with(&[db_container(
        "c1",
        "sha256:0123abcd",
        ContainerState::Running,
    )]))
    .await;
    assert_eq!(s.probes(), ["c1"]);
    s.send(probed("c1", &["pg_dumpall", "redis-cli"])).await;
    let (status, reason, message, kind) = db_ready(&s);
    assert_eq!(
        (status.as_str(), reason, kind),
        ("False", "DbKindUnknown", None)
    );
    assert_eq!(
        message,
        "cannot tell the database kind of db: its image does not name a database and found the dump tools of several databases in the container (pg_dumpall, redis-cli); set dbKind (config) or dev.polarfox.marina.db (label)"
    );

    s.send(Message::DbProbed {
        container_id: "c1".into(),
        result: Ok(Err(ProbeError::NoTool)),
    })
    .await;
    let (status, _, message, _) = db_ready(&s);
    assert_eq!(status, "False");
    assert!(
        message.contains(
            "found none of the dump tools pg_dumpall, mariadb-dump, mysqldump, mongodump, redis-cli"
        ) && message.contains("set dbKind"),
        "{message}"
    );

    // A probe that could not run says why, and is not asked again for this container.
    s.send(Message::DbProbed {
        container_id: "c1".into(),
        result: Err("looking for dump tools in db took longer than 20s; set dbKind (config) or dev.polarfox.marina.db (label)".into()),
    })
    .await;
    let (status, reason, message, _) = db_ready(&s);
    assert_eq!((status.as_str(), reason), ("False", "DbKindUnknown"));
    assert!(message.contains("took longer than 20s"), "{message}");
    assert!(s.probes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_recreated_container_is_probed_again() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    s.send(listing_with(&[db_container(
        "c1",
        "myorg/db:1",
        ContainerState::Running,
    )]))
    .await;
    assert_eq!(s.probes(), ["c1"]);
    s.send(probed("c1", &["pg_dumpall"])).await;
    assert_eq!(db_ready(&s).3, Some(DbKind::Postgres));

    // Recreated from another image under the same name: a new id, maybe other tools.
    s.send(Message::Inventory(InventoryChange::ContainerRemoved {
        id: "c1".into(),
    }))
    .await;
    s.send(Message::Inventory(InventoryChange::ContainerUpdated(
        db_container("c2", "myorg/db:2", ContainerState::Running),
    )))
    .await;
    assert_eq!(s.probes(), ["c2"]);
    assert_eq!(
        db_ready(&s).1,
        "DbKindProbing",
        "the old answer is not reused"
    );
    // A late answer about the gone container changes nothing.
    s.send(probed("c1", &["pg_dumpall"])).await;
    assert_eq!(db_ready(&s).1, "DbKindProbing");
    s.send(probed("c2", &["mariadb-dump", "mysqldump"])).await;
    assert_eq!(db_ready(&s).3, Some(DbKind::Mariadb));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_container_is_probed_only_once_it_runs() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    s.send(listing_with(&[db_container(
        "c1",
        "myorg/db:1",
        ContainerState::Exited,
    )]))
    .await;
    s.pass(10 * MINUTE).await;
    assert!(
        s.probes().is_empty(),
        "a stopped container has no tools to run"
    );
    let (status, reason, message, _) = db_ready(&s);
    assert_eq!((status.as_str(), reason), ("False", "DbKindUnknown"));
    assert!(message.contains("cannot be looked for"), "{message}");

    s.send(Message::Inventory(InventoryChange::ContainerUpdated(
        db_container("c1", "myorg/db:1", ContainerState::Running),
    )))
    .await;
    assert_eq!(s.probes(), ["c1"]);
}

#[tokio::test(start_paused = true)]
async fn a_kind_told_by_config_or_image_name_is_not_probed() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&format!("{DB_CONFIG}        dbKind: postgres\n")))
        .await;
    s.send(listing_with(&[db_container(
        "c1",
        "myorg/db:1",
        ContainerState::Running,
    )]))
    .await;
    assert!(s.probes().is_empty());
    assert_eq!(db_ready(&s).1, "ContainerRunning");

    s.send(listing_with(&[db_container(
        "c2",
        "postgres:16",
        ContainerState::Running,
    )]))
    .await;
    s.send(config(DB_CONFIG)).await;
    assert!(s.probes().is_empty());
    assert_eq!(db_ready(&s).3, Some(DbKind::Postgres));
}
