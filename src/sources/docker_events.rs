//! The Docker source: keeps the reconciler's view of volumes and containers current.
//!
//! It lists everything (remembering the time first), then follows the engine's event stream
//! *since* that time, so nothing falls in the gap (SPEC §5). Each event is answered with one
//! fresh read of the object it names, never by trusting the event's payload, so a repeated or
//! reordered event still leaves the right state: the reconciler applies changes idempotently.
//! When the stream breaks (daemon restart, decode error) it reports the outage once, reconnects
//! with backoff, and swaps in a complete new listing so deletions missed meanwhile are noticed.
//! A periodic relist is a safety net for anything the stream lost without breaking.
//!
//! This file owns that loop; the Docker layer ([`crate::docker`]) owns the engine's side: the
//! listing, the subscription, and which object each event names.

use std::pin::pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc::Sender;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::{self, Clock};
use crate::docker::{self, DockerClient, EngineEvent, Refresh};
use crate::metrics::{DockerEventReceived, DockerObject, DockerWatchRestarted, Metrics};
use crate::model::InventoryChange;
use crate::reconcile::Message;

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
        let mut events = pin!(self.client.events_since(since));
        loop {
            tokio::select! {
                event = events.next() => {
                    // A decode error ends the stream just as a closed connection does
                    // (DEPENDENCIES.md, pitfall 6), so both mean: reconnect and relist.
                    let EngineEvent { action, time_nano, refresh } = match event {
                        Some(Ok(event)) => event,
                        Some(Err(e)) => return Ok(e.to_string()),
                        None => return Ok("the Docker event stream ended".to_owned()),
                    };
                    self.metrics.emit(DockerEventReceived {
                        object: object(&refresh),
                        action: &action,
                    });
                    match self.resolve(refresh).await {
                        Ok(change) => {
                            self.send(change).await?;
                            // SPEC §5 wants changes visible within 100 ms: show where the time goes.
                            if let Some(lag) = lag_since(time_nano) {
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
    async fn resolve(&self, refresh: Refresh) -> docker::Result<InventoryChange> {
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

/// The object a refresh names, as the metrics count it.
fn object(refresh: &Refresh) -> DockerObject<'_> {
    match refresh {
        Refresh::Container(id) | Refresh::ContainerGone(id) => DockerObject::Container(id),
        Refresh::Volume(name) | Refresh::VolumeGone(name) => DockerObject::Volume(name),
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
    use super::*;

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
        // inside a tracing macro would break (DEPENDENCIES.md, pitfall 10).
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
