//! The Docker source: keeps the reconciler's view of volumes and containers current.
//!
//! It lists everything (remembering the time first), then follows the engine's event stream
//! *since* that time, so nothing falls in the gap (SPEC §5). Each event is answered with one
//! fresh read of the object it names, never by trusting the event's payload, so a repeated or
//! reordered event still leaves the right state: the reconciler applies changes idempotently.
//! When the stream breaks (daemon restart, decode error) it reports the outage once, reconnects
//! with backoff, and swaps in a complete new listing so deletions missed meanwhile are noticed.
//! A periodic relist is a safety net for anything the stream lost without breaking.

use std::collections::HashMap;
use std::pin::pin;
use std::time::Duration;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc::Sender;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client::{DockerClient, Result};
use crate::clock::{self, Clock};
use crate::metrics::{DockerEventReceived, DockerObject, DockerWatchRestarted, Metrics};
use crate::model::InventoryChange;
use crate::reconcile::Message;

/// The container actions that can change what Marina sees of a container. Others (exec, attach,
/// health checks, …) are not even sent by the engine, to keep the stream quiet.
const CONTAINER_ACTIONS: [&str; 9] = [
    "create", "destroy", "start", "stop", "die", "rename", "update", "pause", "unpause",
];

/// The volume actions that change the set of volumes (`mount`/`unmount` change nothing Marina
/// keeps; the container events cover them).
const VOLUME_ACTIONS: [&str; 2] = ["create", "destroy"];

/// A zero interval would make tokio panic and a tiny one would hammer the engine.
const MIN_RESYNC_INTERVAL: Duration = Duration::from_secs(1);

/// A stream that stayed up this long was a healthy connection: the next failure starts the
/// backoff from the beginning again. Shorter-lived streams keep backing off, so an engine that
/// accepts listings but drops event streams at once is not hammered.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Follows the Docker engine and sends every change to `inbox` as
/// [`Message::Inventory`], until `shutdown` is cancelled or the inbox is closed.
///
/// The first message is a complete [`InventoryChange::Listed`]; so is the first message after
/// each [`InventoryChange::Disconnected`], and one every `resync_interval` (at least one
/// second). Never returns an error: a lost engine is reported as `Disconnected` and retried
/// with exponential backoff until it answers again. Events and restarts are counted in
/// `metrics`.
pub async fn watch(
    client: DockerClient,
    inbox: Sender<Message>,
    resync_interval: Duration,
    shutdown: CancellationToken,
    metrics: Metrics,
) {
    let watcher = Watcher {
        client,
        inbox: &inbox,
        resync_interval: resync_interval.max(MIN_RESYNC_INTERVAL),
        metrics,
    };
    tokio::select! {
        biased;
        () = shutdown.cancelled() => debug!("Docker watch stopped for shutdown."),
        () = inbox.closed() => debug!("Docker watch stopped: the reconciler's inbox is closed."),
        _ = watcher.run() => debug!("Docker watch stopped: the reconciler's inbox is closed."),
    }
}

/// The reconciler is gone; there is no one left to tell.
#[derive(Debug)]
struct InboxClosed;

struct Watcher<'a> {
    client: DockerClient,
    inbox: &'a Sender<Message>,
    resync_interval: Duration,
    metrics: Metrics,
}

impl Watcher<'_> {
    /// List, follow, and on failure report, back off and start over, forever.
    async fn run(&self) -> std::result::Result<std::convert::Infallible, InboxClosed> {
        let mut backoff = Backoff::default();
        let mut resync = tokio::time::interval(self.resync_interval);
        // After a slow listing, skipped ticks would otherwise fire back to back.
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Whether the reconciler has been told the engine is gone: it hears about each outage
        // once, not once per failed attempt. Only a listing ends an outage, and following the
        // stream afterwards always ends in a new one, so the flag is never cleared.
        let mut disconnected = false;
        loop {
            // Taken before listing: events from here on are replayed by the subscription.
            let since = clock::now();
            let inventory = match self.client.list().await {
                Ok(inventory) => inventory,
                Err(e) => {
                    let delay = backoff.next_delay();
                    if disconnected {
                        debug!(error = %e, retry_in = ?delay, "Docker is still unavailable.");
                    } else {
                        warn!(error = %e, retry_in = ?delay, "Cannot list Docker objects; retrying.");
                        self.send(InventoryChange::Disconnected {
                            reason: e.to_string(),
                        })
                        .await?;
                        disconnected = true;
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            if disconnected {
                info!(
                    volumes = inventory.volumes.len(),
                    containers = inventory.containers.len(),
                    "Reconnected to Docker and relisted everything."
                );
            }
            self.send(InventoryChange::Listed(inventory)).await?;
            // The next safety-net relist is due one interval after this listing.
            resync.reset();

            let connected_at = Clock::System.instant();
            let reason = self.follow(since, &mut resync).await?;
            if connected_at.elapsed() >= STABLE_AFTER {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            self.metrics.emit(DockerWatchRestarted {
                reason: &reason,
                retry_in: delay,
            });
            self.send(InventoryChange::Disconnected { reason }).await?;
            disconnected = true;
            tokio::time::sleep(delay).await;
        }
    }

    /// Follows the event stream until it breaks, and returns why.
    async fn follow(
        &self,
        since: DateTime<Utc>,
        resync: &mut Interval,
    ) -> std::result::Result<String, InboxClosed> {
        let filters = HashMap::from([
            ("type", vec!["container", "volume"]),
            // Filtering by label here would drop volume events (bollard pitfall 7): labels are
            // Marina's business, after the refresh.
            (
                "event",
                CONTAINER_ACTIONS
                    .iter()
                    .chain(&VOLUME_ACTIONS)
                    .copied()
                    .collect(),
            ),
        ]);
        let options = EventsOptionsBuilder::new()
            .since(&since.timestamp().to_string())
            .filters(&filters)
            .build();
        let mut events = pin!(self.client.docker().events(Some(options)));
        loop {
            tokio::select! {
                event = events.next() => {
                    // A decode error ends the stream just as a closed connection does (bollard
                    // pitfall 6), so both mean: reconnect and relist.
                    let event = match event {
                        Some(Ok(event)) => event,
                        Some(Err(e)) => return Ok(format!("the Docker event stream failed: {e}")),
                        None => return Ok("the Docker event stream ended".to_owned()),
                    };
                    let happened_at = event.time_nano;
                    let action = event.action.clone().unwrap_or_default();
                    let Some(refresh) = Refresh::for_event(event) else {
                        continue;
                    };
                    self.metrics.emit(DockerEventReceived {
                        object: refresh.object(),
                        action: &action,
                    });
                    match self.resolve(refresh).await {
                        Ok(change) => {
                            self.send(change).await?;
                            // SPEC §5 wants changes visible within 100 ms: show where the time goes.
                            if let Some(lag) = lag_since(happened_at) {
                                debug!(lag = ?lag, "Docker event forwarded to the reconciler.");
                            }
                        }
                        // The engine is probably going away; the relist after reconnecting
                        // recovers whatever this refresh would have reported.
                        Err(e) => return Ok(e.to_string()),
                    }
                }
                _ = resync.tick() => match self.client.list().await {
                    Ok(inventory) => {
                        debug!(
                            volumes = inventory.volumes.len(),
                            containers = inventory.containers.len(),
                            "Periodic Docker resync."
                        );
                        self.send(InventoryChange::Listed(inventory)).await?;
                    }
                    // An engine that cannot list is probably not sending events either (a
                    // half-open TCP connection never ends the stream): start over.
                    Err(e) => return Ok(format!("the periodic resync failed: {e}")),
                },
            }
        }
    }

    /// Reads the current state of the object an event named.
    async fn resolve(&self, refresh: Refresh) -> Result<InventoryChange> {
        Ok(match refresh {
            Refresh::Container(id) => match self.client.container(&id).await? {
                Some(container) => InventoryChange::ContainerUpdated(container),
                None => InventoryChange::ContainerRemoved { id },
            },
            Refresh::ContainerGone(id) => InventoryChange::ContainerRemoved { id },
            Refresh::Volume(name) => match self.client.volume(&name).await? {
                Some(volume) => InventoryChange::VolumeUpdated(volume),
                None => InventoryChange::VolumeRemoved { name },
            },
            Refresh::VolumeGone(name) => InventoryChange::VolumeRemoved { name },
        })
    }

    async fn send(&self, change: InventoryChange) -> std::result::Result<(), InboxClosed> {
        self.inbox
            .send(Message::Inventory(change))
            .await
            .map_err(|_| InboxClosed)
    }
}

/// How long ago an event with this engine timestamp happened, if the clocks allow saying.
fn lag_since(time_nano: Option<i64>) -> Option<Duration> {
    let now = clock::now().timestamp_nanos_opt()?;
    let nanos = now.checked_sub(time_nano?)?;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

/// What an event asks the watcher to look at again.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refresh {
    /// Read this container (by id) again.
    Container(String),
    /// This container is destroyed; no need to ask.
    ContainerGone(String),
    /// Read this volume (by name) again.
    Volume(String),
    /// This volume is destroyed; no need to ask.
    VolumeGone(String),
}

impl Refresh {
    /// The object it names.
    fn object(&self) -> DockerObject<'_> {
        match self {
            Self::Container(id) | Self::ContainerGone(id) => DockerObject::Container(id),
            Self::Volume(name) | Self::VolumeGone(name) => DockerObject::Volume(name),
        }
    }

    /// What to refresh for `event`; `None` for events Marina does not follow or that do not
    /// say which object they are about.
    fn for_event(event: EventMessage) -> Option<Self> {
        let action = event.action.unwrap_or_default();
        let (id, attributes) = event
            .actor
            .map(|actor| (actor.id, actor.attributes.unwrap_or_default()))
            .unwrap_or_default();
        let id = id.filter(|id| !id.is_empty());
        match event.typ {
            Some(EventMessageTypeEnum::CONTAINER) => {
                let Some(id) = id else {
                    warn!(action = %action, "Skipping a Docker container event without a container id.");
                    return None;
                };
                Some(if action == "destroy" {
                    Self::ContainerGone(id)
                } else {
                    Self::Container(id)
                })
            }
            Some(EventMessageTypeEnum::VOLUME) => {
                // A volume's actor id is its name; older engines also put it in the attributes.
                let name = id.or_else(|| attributes.get("name").filter(|n| !n.is_empty()).cloned());
                let Some(name) = name else {
                    warn!(action = %action, "Skipping a Docker volume event without a volume name.");
                    return None;
                };
                Some(if action == "destroy" {
                    Self::VolumeGone(name)
                } else {
                    Self::Volume(name)
                })
            }
            other => {
                debug!(kind = ?other, action = %action, "Ignoring a Docker event of another kind.");
                None
            }
        }
    }
}

/// Exponential backoff with jitter, so many Marina nodes that lost the same engine (or a
/// restarted Swarm) do not reconnect in lockstep.
#[derive(Debug)]
struct Backoff {
    /// The delay before jitter that the next failure waits.
    next: Duration,
}

impl Backoff {
    const INITIAL: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(30);

    /// The time to wait now; the next wait doubles, up to [`Self::MAX`].
    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(Self::MAX);
        // Between half and all of the base delay.
        base.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    fn reset(&mut self) {
        self.next = Self::INITIAL;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Self::INITIAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    fn event(typ: EventMessageTypeEnum, action: &str, id: Option<&str>) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: id.map(str::to_owned),
                attributes: None,
            }),
            ..EventMessage::default()
        }
    }

    #[test]
    fn container_events_refresh_by_id_and_destroy_removes() {
        use EventMessageTypeEnum::CONTAINER;
        for action in [
            "create", "start", "stop", "die", "rename", "update", "pause",
        ] {
            assert_eq!(
                Refresh::for_event(event(CONTAINER, action, Some("abc"))),
                Some(Refresh::Container("abc".into())),
                "{action}"
            );
        }
        assert_eq!(
            Refresh::for_event(event(CONTAINER, "destroy", Some("abc"))),
            Some(Refresh::ContainerGone("abc".into()))
        );
        assert_eq!(Refresh::for_event(event(CONTAINER, "start", None)), None);
        assert_eq!(
            Refresh::for_event(event(CONTAINER, "start", Some(""))),
            None
        );
    }

    #[test]
    fn volume_events_refresh_by_name_and_destroy_removes() {
        use EventMessageTypeEnum::VOLUME;
        assert_eq!(
            Refresh::for_event(event(VOLUME, "create", Some("data"))),
            Some(Refresh::Volume("data".into()))
        );
        assert_eq!(
            Refresh::for_event(event(VOLUME, "destroy", Some("data"))),
            Some(Refresh::VolumeGone("data".into()))
        );
        let mut named_by_attribute = event(VOLUME, "create", None);
        named_by_attribute.actor = Some(EventActor {
            id: None,
            attributes: Some(HashMap::from([("name".to_owned(), "data".to_owned())])),
        });
        assert_eq!(
            Refresh::for_event(named_by_attribute),
            Some(Refresh::Volume("data".into()))
        );
        assert_eq!(Refresh::for_event(event(VOLUME, "create", None)), None);
    }

    #[test]
    fn other_and_incomplete_events_are_ignored() {
        assert_eq!(
            Refresh::for_event(event(EventMessageTypeEnum::IMAGE, "pull", Some("x"))),
            None
        );
        assert_eq!(Refresh::for_event(EventMessage::default()), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::default();
        let mut base = Backoff::INITIAL;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= base / 2 && delay <= base,
                "{delay:?} for base {base:?}"
            );
            base = (base * 2).min(Backoff::MAX);
        }
        assert_eq!(backoff.next, Backoff::MAX);
        backoff.reset();
        assert!(backoff.next_delay() <= Backoff::INITIAL);
    }

    #[test]
    fn the_watch_future_can_be_spawned() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        // Type-checked, never run: `tokio::spawn` needs a `Send` future, which an `.await`
        // inside a tracing macro would break (bollard pitfall 10).
        fn check(client: DockerClient, inbox: Sender<Message>) {
            assert_send(&watch(
                client,
                inbox,
                Duration::ZERO,
                CancellationToken::new(),
                Metrics::new().unwrap(),
            ));
        }
        let _ = check;
    }
}
