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
            kind: crate::model::JobKind::Backup,
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

mod catch_up;
mod commands;
mod probes;
mod schedules;
