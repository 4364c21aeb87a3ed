//! The Docker watch survives a restart of the Docker daemon: it reports the outage, reconnects
//! by itself, relists, and sees what was created after the daemon came back.
//!
//! This restarts the machine's real engine, so it lives in its own test binary: cargo runs test
//! binaries one after another, so no other test's containers disappear under it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use marina::docker::DockerClient;
use marina::metrics::Metrics;
use marina::model::InventoryChange;
use marina::sources::docker_events::watch;
use support::daemon::Daemon as Marina;
use support::{VolumeGuard, docker_async, docker_output, require_engine_and_images, unique_name};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a daemon this test starts writes its log, for when it does not come back.
const DAEMON_LOG: &str = "/tmp/marina-test-dockerd.log";

/// How long the daemon may take to stop or to answer again.
const DAEMON_WAIT: Duration = Duration::from_mins(1);

/// Polling step while waiting for the daemon; counting steps keeps the clock out of the test.
const POLL: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_reconnects_and_relists_after_a_daemon_restart() {
    require_engine_and_images();
    support::show_marina_logs();
    let volume = unique_name("restart-vol");
    let _volume_guard = VolumeGuard(volume.clone());
    let daemon = tokio::task::spawn_blocking(Daemon::find).await.unwrap();
    // Declared after the other guards, so it is dropped first: the daemon runs again before
    // they try to clean up.
    let _running = EnsureRunning(daemon.clone());

    let client = DockerClient::connect().await.unwrap();
    let (inbox, mut changes) = mpsc::channel(4096);
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn(watch(
        client,
        inbox,
        Duration::from_hours(1),
        shutdown.clone(),
        Metrics::new().unwrap(),
    ));
    next_change_or_fail(&mut changes, "a first listing", |c| {
        matches!(c, InventoryChange::Listed(_)).then_some(())
    })
    .await;
    // The whole daemon too: after the restart its API must show a volume labelled meanwhile.
    let marina = Marina::start(
        "instances:\n  - id: nightly\n    repository: /srv/r\n    schedule: '@daily'\n    env: {RESTIC_PASSWORD: x}\n",
    );
    marina.wait_ready().await;
    let labelled = unique_name("restart-labelled");
    let _labelled_guard = VolumeGuard(labelled.clone());

    tokio::task::spawn_blocking(move || daemon.restart())
        .await
        .unwrap();
    docker_async(&["volume", "create", &volume]).await;
    docker_async(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nightly",
        &labelled,
    ])
    .await;

    let reason = next_change_or_fail(&mut changes, "Disconnected", |c| match c {
        InventoryChange::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(!reason.is_empty());
    // After the outage: a complete listing (the reconnect), and the new volume, either in that
    // or a later listing or as an event of its own, whichever the timing gives.
    let mut relisted = false;
    let mut seen = false;
    while !(relisted && seen) {
        next_change_or_fail(&mut changes, "the relisting with the new volume", |c| {
            match c {
                InventoryChange::Listed(inventory) => {
                    relisted = true;
                    seen |= inventory.volumes.contains_key(&volume);
                }
                InventoryChange::VolumeUpdated(v) if v.name == volume => seen = true,
                InventoryChange::Disconnected { reason } => {
                    // The daemon may flap while it starts; more outages are fine, but say so.
                    eprintln!("another Disconnected while waiting: {reason}");
                }
                _ => {}
            }
            Some(())
        })
        .await;
    }

    let id = format!("volume:{labelled}");
    marina
        .wait_for(
            "/api/targets",
            60,
            "the volume labelled during the restart",
            |t| {
                t["targets"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|e| e["id"] == id.as_str()))
            },
        )
        .await;
    let readiness = reqwest::get(format!("{}/readyz", marina.base_url))
        .await
        .unwrap();
    assert!(
        readiness.status().is_success(),
        "ready again after the reconnect"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("the watch stops promptly on shutdown")
        .unwrap();
}

/// Like `support::next_change`, with room for a slow daemon start and a reconnect backoff.
async fn next_change_or_fail<T>(
    changes: &mut mpsc::Receiver<marina::reconcile::Message>,
    what: &str,
    pick: impl FnMut(&InventoryChange) -> Option<T>,
) -> T {
    support::next_change(changes, DAEMON_WAIT.as_secs() + 30, what, pick).await
}

/// How the Docker daemon on this machine is run, so the test can restart it.
#[derive(Debug, Clone)]
enum Daemon {
    /// systemd manages it: `systemctl restart docker`.
    Systemd,
    /// A plain process (as on these test machines): stop it and start its command line again.
    Process {
        pid: u32,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
    },
}

impl Daemon {
    fn find() -> Self {
        let systemd = Command::new("systemctl")
            .args(["is-active", "--quiet", "docker"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if systemd {
            return Self::Systemd;
        }
        let pid = dockerd_pid();
        let argv = split_nul(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap());
        assert!(!argv.is_empty(), "dockerd (pid {pid}) has no command line");
        let env = split_nul(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
            .into_iter()
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| "/".into());
        Self::Process {
            pid,
            argv,
            env,
            cwd,
        }
    }

    /// Stops the daemon, starts it again and waits until it answers.
    fn restart(&self) {
        match self {
            Self::Systemd => {
                let status = Command::new("systemctl")
                    .args(["restart", "docker"])
                    .status()
                    .unwrap();
                assert!(status.success(), "`systemctl restart docker` failed");
            }
            Self::Process { pid, .. } => {
                let status = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(
                    status.success(),
                    "cannot send SIGTERM to dockerd (pid {pid})"
                );
                assert!(
                    wait_for_exit(*pid),
                    "dockerd (pid {pid}) did not exit within {DAEMON_WAIT:?} of SIGTERM"
                );
                self.start();
            }
        }
        assert!(
            wait_until_answering(),
            "the Docker daemon did not answer within {DAEMON_WAIT:?} of being restarted; see {DAEMON_LOG}"
        );
    }

    /// Starts the daemon as it was started before, detached so it outlives the test.
    #[allow(clippy::zombie_processes)] // The daemon must outlive the test: never waited for.
    fn start(&self) {
        match self {
            Self::Systemd => {
                let _ = Command::new("systemctl").args(["start", "docker"]).status();
            }
            Self::Process { argv, env, cwd, .. } => {
                let log = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(DAEMON_LOG)
                    .unwrap();
                let log_err = log.try_clone().unwrap();
                // `setsid`: a session of its own, so the daemon outlives the test, its process
                // group and the shell that ran it.
                Command::new("setsid")
                    .args(argv)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .current_dir(cwd)
                    .stdin(File::open("/dev/null").unwrap())
                    .stdout(log)
                    .stderr(log_err)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
            }
        }
    }
}

/// Starts the daemon again when the test leaves it stopped (for example after a failed
/// assertion mid-restart), so one failing test does not take the engine away from the rest.
struct EnsureRunning(Daemon);

impl Drop for EnsureRunning {
    fn drop(&mut self) {
        if answers() {
            return;
        }
        if let Daemon::Process { pid, .. } = &self.0 {
            // A daemon still shutting down holds the socket and pid file: let it finish.
            wait_for_exit(*pid);
        }
        eprintln!("the Docker daemon is not answering; starting it again");
        self.0.start();
        if !wait_until_answering() {
            eprintln!("the Docker daemon did not come back; see {DAEMON_LOG}");
        }
    }
}

/// The pid of the one `dockerd` on this machine: the pid file's if it names a live dockerd,
/// else the only process called `dockerd`.
fn dockerd_pid() -> u32 {
    let is_dockerd = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dockerd")
    };
    if let Some(pid) = std::fs::read_to_string("/var/run/docker.pid")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&pid| is_dockerd(pid))
    {
        return pid;
    }
    let found: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| is_dockerd(pid))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one dockerd process to restart, found {found:?}"
    );
    found[0]
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// Whether `pid` is gone (or a zombie nobody reaped yet) within [`DAEMON_WAIT`].
fn wait_for_exit(pid: u32) -> bool {
    poll_until(
        || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state is the field after the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => true,
        },
    )
}

fn wait_until_answering() -> bool {
    poll_until(answers)
}

fn answers() -> bool {
    docker_output(&["info", "--format", "{{.ServerVersion}}"])
        .status
        .success()
}

fn poll_until(mut done: impl FnMut() -> bool) -> bool {
    let attempts = DAEMON_WAIT.as_millis() / POLL.as_millis();
    for _ in 0..attempts {
        if done() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    done()
}
