//! Plumbing shared by the scenarios: unique names, a stopwatch, the Docker engine (bollard for
//! bulk work, the CLI for builds and `docker run`), guards that remove what a scenario made
//! when they are dropped — also when the scenario panics — and deterministic data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use futures::StreamExt;

// The docker CLI helpers and image builds are the integration tests' own.
pub use crate::test_support::{ImageGuard, build_image, docker, docker_output};

/// The busybox scratch image built by `scripts/test-images.sh`.
pub const BUSYBOX: &str = "marina-test/busybox:latest";
/// The label that opts a volume or container in.
pub const ENABLED: &str = "dev.polarfox.marina.enabled";
/// The label that names the instance(s) of a target.
pub const INSTANCE: &str = "dev.polarfox.marina.instanceID";
/// The label that makes a container a database target.
pub const DB: &str = "dev.polarfox.marina.db";
/// Every object this run creates carries this label with the run's prefix as value, so a
/// final sweep finds whatever a scenario left.
pub const RUN_LABEL: &str = "marina.bench.run";
/// The scenario that created an object, for the scenario's own sweep.
pub const SCENARIO_LABEL: &str = "marina.bench.scenario";
/// How many engine calls run at once when creating or removing objects in bulk.
const BULK_CONCURRENCY: usize = 16;

/// `marina-bench-<pid>`: the prefix of every name this run gives an object.
pub fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("marina-bench-{}", std::process::id()))
}

/// A name no other object (or earlier run) has: prefix, what, counter.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{what}-{n}", prefix())
}

/// Measures real elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts now.
    #[allow(clippy::disallowed_methods)] // A benchmark measures real time, not a test clock.
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Time since the start.
    pub fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}

/// Labels of a labelled target for `instance`, plus the run and scenario labels.
pub fn target_labels(scenario: &str, instance: &str) -> HashMap<String, String> {
    let mut labels = object_labels(scenario);
    labels.insert(ENABLED.to_owned(), "true".to_owned());
    labels.insert(INSTANCE.to_owned(), instance.to_owned());
    labels
}

/// The run and scenario labels every object gets.
pub fn object_labels(scenario: &str) -> HashMap<String, String> {
    HashMap::from([
        (RUN_LABEL.to_owned(), prefix().to_owned()),
        (SCENARIO_LABEL.to_owned(), scenario.to_owned()),
    ])
}

/// The Docker engine, through bollard.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// A container to create (not start).
pub struct NewContainer {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Named volumes mounted at `/v0`, `/v1`, …
    pub volumes: Vec<String>,
}

impl Engine {
    /// Connects to the local engine.
    pub async fn connect() -> Self {
        let docker = Docker::connect_with_local_defaults()
            .expect("a Docker client")
            .negotiate_version()
            .await
            .expect("the Docker engine answers");
        Self { docker }
    }

    /// Creates one volume; returns when the engine has answered.
    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) {
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..VolumeCreateRequest::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating volume {name}: {e}"));
    }

    /// Creates many volumes concurrently.
    pub async fn create_volumes(&self, volumes: Vec<(String, HashMap<String, String>)>) {
        futures::stream::iter(volumes)
            .map(|(name, labels)| async move { self.create_volume(&name, labels).await })
            .buffer_unordered(BULK_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }

    /// Creates many containers (busybox, not started) concurrently.
    pub async fn create_containers(&self, containers: Vec<NewContainer>) {
        futures::stream::iter(containers)
            .map(|container| async move {
                let binds = container
                    .volumes
                    .iter()
                    .enumerate()
                    .map(|(i, volume)| format!("{volume}:/v{i}"))
                    .collect();
                let body = ContainerCreateBody {
                    image: Some(BUSYBOX.to_owned()),
                    cmd: Some(vec!["sleep".to_owned(), "3600".to_owned()]),
                    labels: Some(container.labels),
                    host_config: Some(HostConfig {
                        binds: Some(binds),
                        network_mode: Some("none".to_owned()),
                        ..HostConfig::default()
                    }),
                    ..ContainerCreateBody::default()
                };
                let options = CreateContainerOptionsBuilder::new()
                    .name(&container.name)
                    .build();
                self.docker
                    .create_container(Some(options), body)
                    .await
                    .unwrap_or_else(|e| panic!("creating container {}: {e}", container.name));
            })
            .buffer_unordered(BULK_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }

    /// Where the engine keeps a volume's files on this host.
    pub async fn mountpoint(&self, volume: &str) -> PathBuf {
        let inspected = self
            .docker
            .inspect_volume(volume)
            .await
            .unwrap_or_else(|e| panic!("inspecting volume {volume}: {e}"));
        PathBuf::from(inspected.mountpoint)
    }
}

/// Removes, when dropped, every container and volume labelled with this run and `scenario`
/// (or with this run at all, for the final sweep).
pub struct Sweep {
    /// The label filter.
    filter: String,
}

impl Sweep {
    /// Sweeps the objects of `scenario`.
    pub fn scenario(scenario: &str) -> Self {
        Self {
            filter: format!("label={SCENARIO_LABEL}={scenario}"),
        }
    }

    /// Sweeps every object of this run.
    pub fn run() -> Self {
        Self {
            filter: format!("label={RUN_LABEL}={}", prefix()),
        }
    }

    /// Removes the objects now (the guard sweeps again when dropped, which is then a no-op).
    pub fn now(&self) {
        let run_filter = format!("label={RUN_LABEL}={}", prefix());
        let containers = docker_output(&[
            "ps",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            &run_filter,
            "--filter",
            &self.filter,
        ]);
        let ids = lines(&containers);
        remove_in_chunks(&["rm", "--force", "--volumes"], &ids);
        let volumes = docker_output(&[
            "volume",
            "ls",
            "--quiet",
            "--filter",
            &run_filter,
            "--filter",
            &self.filter,
        ]);
        remove_in_chunks(&["volume", "rm", "--force"], &lines(&volumes));
    }
}

/// Removes what earlier runs left behind when they could not clean up (killed, or interrupted
/// with Ctrl-C): objects labelled with the prefix of a process that no longer exists.
pub fn remove_leftovers_of_dead_runs() {
    let mut prefixes: Vec<String> = Vec::new();
    for listing in [
        docker_output(&[
            "ps",
            "--all",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{RUN_LABEL}\"}}}}"),
        ]),
        docker_output(&[
            "volume",
            "ls",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{RUN_LABEL}\"}}}}"),
        ]),
        docker_output(&["image", "ls", "--format", "{{.Repository}}"]),
    ] {
        prefixes.extend(lines(&listing).into_iter().filter_map(|value| {
            let pid: u32 = value
                .strip_prefix("marina-bench-")?
                .split('-')
                .next()?
                .parse()
                .ok()?;
            let dead = !Path::new(&format!("/proc/{pid}")).exists();
            dead.then(|| format!("marina-bench-{pid}"))
        }));
    }
    prefixes.sort();
    prefixes.dedup();
    for prefix in prefixes {
        eprintln!("bench: removing what the dead run {prefix} left behind");
        let filter = format!("label={RUN_LABEL}={prefix}");
        let containers = docker_output(&["ps", "--all", "--quiet", "--filter", &filter]);
        remove_in_chunks(&["rm", "--force", "--volumes"], &lines(&containers));
        let volumes = docker_output(&["volume", "ls", "--quiet", "--filter", &filter]);
        remove_in_chunks(&["volume", "rm", "--force"], &lines(&volumes));
        let _ = docker_output(&["image", "rm", "--force", &format!("{prefix}-tools:latest")]);
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        self.now();
    }
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// `docker <command> NAMES…` in chunks, so 2,000 names do not make one huge command line.
fn remove_in_chunks(command: &[&str], names: &[String]) {
    for chunk in names.chunks(200) {
        let mut args: Vec<&str> = command.to_vec();
        args.extend(chunk.iter().map(String::as_str));
        let output = docker_output(&args);
        if !output.status.success() {
            eprintln!(
                "bench: cleanup `docker {}` failed: {}",
                command.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
}

impl Engine {
    /// Removes volumes concurrently (faster than the sweep's CLI for thousands).
    pub async fn remove_volumes(&self, names: &[String]) {
        futures::stream::iter(names)
            .map(|name| async move {
                let options = RemoveVolumeOptionsBuilder::new().force(true).build();
                let _ = self.docker.remove_volume(name, Some(options)).await;
            })
            .buffer_unordered(BULK_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }

    /// Removes containers concurrently.
    pub async fn remove_containers(&self, names: &[String]) {
        futures::stream::iter(names)
            .map(|name| async move {
                let options = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = self.docker.remove_container(name, Some(options)).await;
            })
            .buffer_unordered(BULK_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }
}

/// Fills `dir` with `files` files of pseudo-random bytes (seeded, so every run writes the
/// same data), `files_per_dir` to a directory, each between `min` and `max` bytes (half-open).
/// Returns the total size in bytes.
pub fn fill_dir(
    dir: &Path,
    seed: u64,
    files: usize,
    files_per_dir: usize,
    size: std::ops::Range<usize>,
) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buffer = vec![0_u8; size.end];
    let mut total = 0_u64;
    for i in 0..files {
        let sub = dir.join(format!("d{:03}", i / files_per_dir));
        if i % files_per_dir == 0 {
            std::fs::create_dir_all(&sub).expect("creating a data directory");
        }
        let len = rng.usize(size.clone());
        rng.fill(&mut buffer[..len]);
        std::fs::write(sub.join(format!("f{i:05}.bin")), &buffer[..len]).expect("writing data");
        total += len as u64;
    }
    total
}

/// `p`-th percentile (0 < p ≤ 100) of `values` by the nearest-rank method.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "no values for a percentile");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // A small positive rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values`.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "no values for a median");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        f64::midpoint(sorted[mid - 1], sorted[mid])
    } else {
        sorted[mid]
    }
}

/// Milliseconds, as a float.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
