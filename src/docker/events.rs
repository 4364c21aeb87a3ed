//! The engine's event stream, reduced to what Marina follows: which container or volume to
//! read again.
//!
//! Only the container and volume actions that can change what Marina sees are subscribed to,
//! and each event is translated into a [`Refresh`] naming one object, never trusted for its
//! payload. What to do with it (read the object, forward it, reconnect when the stream ends)
//! is the Docker source's business (`sources::docker_events`).

use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, future};
use tracing::{debug, warn};

use super::client::{DockerClient, DockerError, Result};

/// The container actions that can change what Marina sees of a container. Others (exec, attach,
/// health checks, …) are not even sent by the engine, to keep the stream quiet.
const CONTAINER_ACTIONS: [&str; 9] = [
    "create", "destroy", "start", "stop", "die", "rename", "update", "pause", "unpause",
];

/// The volume actions that change the set of volumes (`mount`/`unmount` change nothing Marina
/// keeps; the container events cover them).
const VOLUME_ACTIONS: [&str; 2] = ["create", "destroy"];

/// One event Marina follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineEvent {
    /// The engine's action (`start`, `destroy`, …).
    pub(crate) action: String,
    /// When it happened by the engine's clock, in nanoseconds since the epoch.
    pub(crate) time_nano: Option<i64>,
    /// What it asks to look at again.
    pub(crate) refresh: Refresh,
}

/// What an event asks the watcher to look at again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Read this container (by id) again.
    Container(String),
    /// This container is destroyed; no need to ask.
    ContainerGone(String),
    /// Read this volume (by name) again.
    Volume(String),
    /// This volume is destroyed; no need to ask.
    VolumeGone(String),
}

impl DockerClient {
    /// The container and volume events from `since` on (the engine replays those already
    /// past), skipping events that name no object. The stream ends, or yields
    /// [`DockerError::EventStream`], when the connection breaks; a decode error ends it too
    /// (DEPENDENCIES.md, bollard pitfall 6).
    pub(crate) fn events_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Stream<Item = Result<EngineEvent>> + Send + '_ {
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
        self.docker().events(Some(options)).filter_map(|event| {
            future::ready(match event {
                Ok(event) => EngineEvent::from_message(event).map(Ok),
                Err(source) => Some(Err(DockerError::EventStream { source })),
            })
        })
    }
}

impl EngineEvent {
    /// The event Marina follows in `event`; `None` for events of other kinds or that do not
    /// say which object they are about.
    fn from_message(event: EventMessage) -> Option<Self> {
        let time_nano = event.time_nano;
        let action = event.action.clone().unwrap_or_default();
        let refresh = Refresh::for_event(event)?;
        Some(Self {
            action,
            time_nano,
            refresh,
        })
    }
}

impl Refresh {
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
}
