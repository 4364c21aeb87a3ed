//! The Docker adapter against the real engine: a listing sees volumes and containers as
//! `docker` created them, and the watch turns real engine events into inventory changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use marina::docker::DockerClient;
use marina::metrics::Metrics;
use marina::model::{ContainerState, InventoryChange, VolumeMount};
use marina::reconcile::Message;
use marina::sources::docker_events::watch;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, VolumeGuard, docker, docker_async, next_change,
    require_engine_and_images, unique_name,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: the engine is shared with parallel tests on a small, noisy machine. A missed
/// event fails after this instead of hanging.
const EVENT_TIMEOUT_SECS: u64 = 30;

#[tokio::test]
async fn a_listing_sees_labelled_volumes_and_the_containers_that_mount_them() {
    require_engine_and_images();
    support::show_marina_logs();
    let volume = unique_name("inv-data");
    let _volume_guard = VolumeGuard(volume.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nightly",
        &volume,
    ]);
    let read_only = unique_name("inv-config");
    let _read_only_guard = VolumeGuard(read_only.clone());
    docker(&["volume", "create", &read_only]);
    let container = unique_name("inv-app");
    let _container_guard = ContainerGuard(container.clone());
    let id = docker(&[
        "create",
        "--name",
        &container,
        "--label",
        "com.example.role=app",
        "-v",
        &format!("{volume}:/data"),
        "-v",
        &format!("{read_only}:/config:ro"),
        // Neither a bind mount nor a tmpfs is a volume: both must be left out.
        "-v",
        "/tmp:/host-tmp:ro",
        "--tmpfs",
        "/scratch",
        BUSYBOX_IMAGE,
        "sleep",
        "300",
    ]);
    let id = id.trim();

    let client = DockerClient::connect().await.unwrap();
    let inventory = client.list().await.unwrap();

    let listed = &inventory.volumes[&volume];
    assert_eq!(listed.driver, "local");
    assert_eq!(
        listed.labels,
        BTreeMap::from([
            ("dev.polarfox.marina.enabled".to_owned(), "true".to_owned()),
            (
                "dev.polarfox.marina.instanceID".to_owned(),
                "nightly".to_owned()
            ),
        ])
    );
    let mountpoint = docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume]);
    assert_eq!(listed.mountpoint, Some(PathBuf::from(mountpoint.trim())));
    assert!(inventory.volumes.contains_key(&read_only));

    let found = inventory
        .container_named(&container)
        .expect("the container");
    assert_eq!(found.id, id);
    assert_eq!(found.image, BUSYBOX_IMAGE);
    assert_eq!(found.state, ContainerState::Created);
    assert_eq!(
        found.labels.get("com.example.role").map(String::as_str),
        Some("app")
    );
    let mut mounts = found.mounts.clone();
    mounts.sort_by(|a, b| a.destination.cmp(&b.destination));
    assert_eq!(
        mounts,
        [
            VolumeMount {
                volume: read_only.clone(),
                destination: "/config".to_owned(),
                read_write: false,
            },
            VolumeMount {
                volume: volume.clone(),
                destination: "/data".to_owned(),
                read_write: true,
            },
        ]
    );
    let mounting: Vec<&str> = inventory
        .containers_mounting(&volume)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(mounting, [container.as_str()]);

    // The single-object reads used after events agree with the listing.
    assert_eq!(client.volume(&volume).await.unwrap().as_ref(), Some(listed));
    docker(&["start", &container]);
    let refreshed = client.container(id).await.unwrap().expect("the container");
    assert_eq!(refreshed.state, ContainerState::Running);
    assert_eq!(refreshed.mounts.len(), 2);
    assert_eq!(
        client.volume(&unique_name("never-created")).await.unwrap(),
        None
    );
    assert_eq!(client.container(&"0".repeat(64)).await.unwrap(), None);
}

/// A running `watch()` whose first listing has arrived.
struct Watching {
    changes: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Watching {
    async fn start(resync_interval: Duration) -> Self {
        let client = DockerClient::connect().await.unwrap();
        let (inbox, mut changes) = mpsc::channel(1024);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(watch(
            client,
            inbox,
            resync_interval,
            shutdown.clone(),
            Metrics::new().unwrap(),
        ));
        let first = next_change(&mut changes, EVENT_TIMEOUT_SECS, "a first listing", |c| {
            Some(c.clone())
        })
        .await;
        assert!(
            matches!(first, InventoryChange::Listed(_)),
            "the first change must be a listing, got {first:?}"
        );
        Self {
            changes,
            shutdown,
            task,
        }
    }

    async fn next<T>(&mut self, what: &str, pick: impl FnMut(&InventoryChange) -> Option<T>) -> T {
        next_change(&mut self.changes, EVENT_TIMEOUT_SECS, what, pick).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the watch stops promptly on shutdown")
            .unwrap();
    }
}

#[tokio::test]
async fn the_watch_reports_volumes_as_they_come_and_go() {
    require_engine_and_images();
    support::show_marina_logs();
    let mut watching = Watching::start(Duration::from_hours(1)).await;

    let volume = unique_name("watch-vol");
    let _volume_guard = VolumeGuard(volume.clone());
    docker_async(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        &volume,
    ])
    .await;
    let seen = watching
        .next("VolumeUpdated", |c| match c {
            InventoryChange::VolumeUpdated(v) if v.name == volume => Some(v.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        seen.labels
            .get("dev.polarfox.marina.enabled")
            .map(String::as_str),
        Some("true")
    );
    docker_async(&["volume", "rm", &volume]).await;
    watching
        .next("VolumeRemoved", |c| {
            matches!(c, InventoryChange::VolumeRemoved { name } if *name == volume).then_some(())
        })
        .await;
    watching.stop().await;
}

#[tokio::test]
async fn the_watch_follows_a_container_through_start_rename_and_removal() {
    require_engine_and_images();
    support::show_marina_logs();
    let mut watching = Watching::start(Duration::from_hours(1)).await;

    let container = unique_name("watch-app");
    let renamed = unique_name("watch-renamed");
    let _container_guard = ContainerGuard(container.clone());
    let _renamed_guard = ContainerGuard(renamed.clone());
    let id = docker_async(&[
        "run",
        "-d",
        "--name",
        &container,
        BUSYBOX_IMAGE,
        "sleep",
        "300",
    ])
    .await;
    let id = id.trim().to_owned();
    let running = watching
        .next("ContainerUpdated (running)", |c| match c {
            InventoryChange::ContainerUpdated(info)
                if info.name == container && info.state == ContainerState::Running =>
            {
                Some(info.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(running.id, id);
    assert_eq!(running.image, BUSYBOX_IMAGE);

    docker_async(&["rename", &container, &renamed]).await;
    watching
        .next("ContainerUpdated (renamed)", |c| {
            matches!(c, InventoryChange::ContainerUpdated(info)
                if info.id == id && info.name == renamed)
            .then_some(())
        })
        .await;

    docker_async(&["rm", "-f", &renamed]).await;
    watching
        .next("ContainerRemoved", |c| {
            matches!(c, InventoryChange::ContainerRemoved { id: gone } if *gone == id).then_some(())
        })
        .await;
    watching.stop().await;
}

#[tokio::test]
async fn the_watch_relists_periodically_and_stops_when_the_inbox_closes() {
    require_engine_and_images();
    support::show_marina_logs();
    let mut watching = Watching::start(Duration::from_secs(1)).await;
    let volume = unique_name("resync-vol");
    let _volume_guard = VolumeGuard(volume.clone());
    docker_async(&["volume", "create", &volume]).await;
    // The event may well come first; the point is that a later full listing has it too.
    watching
        .next("a resync listing with the new volume", |c| {
            matches!(c, InventoryChange::Listed(inventory) if inventory.volumes.contains_key(&volume))
                .then_some(())
        })
        .await;

    drop(watching.changes);
    tokio::time::timeout(Duration::from_secs(5), watching.task)
        .await
        .expect("the watch stops promptly once the inbox is closed")
        .unwrap();
}
