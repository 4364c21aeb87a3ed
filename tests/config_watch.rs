//! The config watcher on a real file system: editors' write-and-rename, Kubernetes/Swarm
//! `..data` symlink swaps, invalid files, and SIGHUP. Its own test binary, because SIGHUP is
//! sent to the whole test process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use marina::config::{Environment, ProcessEnvironment};
use marina::metrics::Metrics;
use marina::reconcile::Message;
use marina::sources::config_file::watch;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// SIGHUP reaches every watcher in this process: the tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(schedule: &str) -> String {
    format!(
        "instances:\n  - id: a\n    repository: /srv/r\n    schedule: '{schedule}'\n    env: {{RESTIC_PASSWORD: x}}\n"
    )
}

/// The next message, or a failure after a few seconds.
async fn next(inbox: &mut mpsc::Receiver<Message>) -> Message {
    tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("no message from the config watcher within 5s")
        .expect("the watcher stopped")
}

fn schedule_of(message: &Message) -> String {
    match message {
        Message::ConfigLoaded { config, .. } => config.instances[0].schedule.to_string(),
        other => panic!("expected a loaded config, got {other:?}"),
    }
}

fn start(path: &Path, current: &str) -> (mpsc::Receiver<Message>, CancellationToken) {
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let env: Arc<dyn Environment + Send + Sync> = Arc::new(ProcessEnvironment);
    tokio::spawn(watch(
        path.to_path_buf(),
        env,
        tx,
        current.as_bytes().to_vec(),
        shutdown.clone(),
        Metrics::new().unwrap(),
    ));
    (rx, shutdown)
}

#[tokio::test]
async fn an_editor_rename_reloads_and_an_invalid_file_is_rejected() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, config("@daily")).unwrap();
    let (mut inbox, shutdown) = start(&path, &config("@daily"));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let temp = dir.path().join(".config.yml.swp");
    std::fs::write(&temp, config("@hourly")).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    assert_eq!(schedule_of(&next(&mut inbox).await), "@hourly");

    std::fs::write(&temp, "instances:\n  - id: a\n    schedule: nope\n").unwrap();
    std::fs::rename(&temp, &path).unwrap();
    match next(&mut inbox).await {
        Message::ConfigRejected { diagnostics } => {
            assert!(
                diagnostics
                    .iter()
                    .any(|d| d.position.is_some_and(|p| p.line == 3)),
                "{diagnostics:?}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    // Other files in the directory are ignored.
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), inbox.recv())
            .await
            .is_err()
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_data_symlink_swap_reloads() {
    let _turn = SERIAL.lock().await;
    // The layout Kubernetes ConfigMaps and Swarm configs mounted as directories use:
    // config.yml -> ..data/config.yml, ..data -> ..<timestamp>/.
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("..2026_11_26_a");
    std::fs::create_dir(&first).unwrap();
    std::fs::write(first.join("config.yml"), config("@daily")).unwrap();
    symlink("..2026_11_26_a", dir.path().join("..data")).unwrap();
    symlink("..data/config.yml", dir.path().join("config.yml")).unwrap();
    let (mut inbox, shutdown) = start(&dir.path().join("config.yml"), &config("@daily"));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let second = dir.path().join("..2026_11_26_b");
    std::fs::create_dir(&second).unwrap();
    std::fs::write(second.join("config.yml"), config("@weekly")).unwrap();
    symlink("..2026_11_26_b", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();
    assert_eq!(schedule_of(&next(&mut inbox).await), "@weekly");
    shutdown.cancel();
}

#[tokio::test]
async fn sighup_forces_a_reload_of_an_unchanged_file() {
    let _turn = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, config("@daily")).unwrap();
    let (mut inbox, shutdown) = start(&path, &config("@daily"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(schedule_of(&next(&mut inbox).await), "@daily");
    shutdown.cancel();
}
