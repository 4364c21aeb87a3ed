//! Restores that really run, end to end: `marina run` against the real engine and a real
//! restic repository. A volume is backed up, changed, and brought back through the API —
//! into a new volume and in place — and every file's bytes, mode, owner, modification time,
//! symlinks and hard links are compared with what was backed up. The in-place restore's
//! safety snapshot brings the changed state back again; a crash in the middle of an
//! in-place restore leaves the containers running and the safety snapshot whole.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::{
    VolumeGuard, docker, docker_output, plain_volume, require_engine_and_images, running_app,
    state_of, unique_name,
};

const PASSWORD: &str = "restore-e2e-password";

/// A volume whose files show every attribute a restore must keep: modes, owners, a
/// nanosecond mtime, a symlink to nothing, two hard links to one file, an empty directory.
const ORIGINAL: &str = "set -e; mkdir -p /data/conf/empty /data/logs; \
    echo 'listen 80' > /data/conf/site.conf; chmod 0640 /data/conf/site.conf; \
    chown 1234:5678 /data/conf/site.conf; \
    head -c 300000 /dev/urandom > /data/logs/big.bin; \
    ln /data/logs/big.bin /data/logs/big-link.bin; \
    ln -s ../missing/target /data/conf/dangling; \
    chmod 0700 /data/logs; chown 42:43 /data/logs";

/// Gives a file of `volume` a modification time with nanoseconds (busybox's `touch` takes
/// whole seconds only).
fn set_nanosecond_mtime(volume: &str, file: &str) {
    let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_614_834_367, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(mountpoint(volume).join(file))
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// A volume filled with [`ORIGINAL`].
fn original_volume() -> (String, VolumeGuard) {
    let (volume, guard) = plain_volume(ORIGINAL);
    set_nanosecond_mtime(&volume, "conf/site.conf");
    (volume, guard)
}

/// What an operator did after the backup: changed, deleted and added files.
const CHANGES: &str = "set -e; echo 'listen 8080' > /data/conf/site.conf; rm /data/logs/big-link.bin; \
    rm -r /data/conf/empty; echo new > /data/added.txt";

/// Instance `files` backs up `volumes` to `repo`; instance `other` shares the repository
/// and has no targets.
fn config_of(repo: &Path, volumes: &[&str]) -> String {
    let targets = volumes.iter().fold(String::new(), |mut text, volume| {
        let _ = writeln!(text, "      - volume: {volume}");
        text
    });
    format!(
        "instances:\n  - id: files\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n    targets:\n{targets}  - id: other\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n",
        repo.display(),
        repo.display(),
    )
}

fn config(repo: &Path, volume: &str) -> String {
    config_of(repo, &[volume])
}

fn mountpoint(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

/// Every entry under `root` with everything a restore must keep; hard links show as the
/// first path of their inode.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    let mut all = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path.clone());
            }
            all.push((path, meta));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, meta) in all {
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let kind = if meta.file_type().is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            "dir".to_owned()
        } else {
            let bytes = std::fs::read(&path).unwrap();
            let first = inodes.entry(meta.ino()).or_insert_with(|| name.clone());
            format!(
                "file {} bytes {:x} inode-of {first}",
                bytes.len(),
                digest(&bytes)
            )
        };
        // A directory's mtime changes whenever its entries do, so only files and links
        // carry theirs.
        let mtime = if meta.is_dir() {
            String::new()
        } else {
            format!(" mtime {}.{:09}", meta.mtime(), meta.mtime_nsec())
        };
        entries.insert(
            name,
            format!(
                "{kind} mode {:o} owner {}:{}{mtime}",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            ),
        );
    }
    entries
}

/// FNV-1a: enough to tell two contents apart in a test.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn fill(volume: &str, script: &str) {
    let filler = unique_name("fill");
    let _filler = support::ContainerGuard(filler.clone());
    docker(&[
        "run",
        "--name",
        &filler,
        "-v",
        &format!("{volume}:/data"),
        support::BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
}

fn volume_exists(name: &str) -> bool {
    docker_output(&["volume", "inspect", name]).status.success()
}

async fn restore(daemon: &Daemon, body: Value) -> (u16, Value) {
    daemon
        .post_json("/api/instances/files/restore", &body)
        .await
}

/// Queues a restore and waits for its job; returns the finished job.
async fn restore_job(daemon: &Daemon, body: Value) -> Value {
    let (status, answer) = restore(daemon, body.clone()).await;
    assert_eq!(status, 202, "restore {body}: {answer}");
    let job = answer["jobId"].as_i64().unwrap();
    daemon.wait_job("files", job, 120).await
}

fn pre_restore_snapshots(snapshots: &Value) -> Vec<Value> {
    snapshots["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["preRestore"] == true)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_volume_comes_back_into_a_new_volume_and_in_place_and_the_in_place_restore_can_be_undone()
{
    require_engine_and_images();
    let repo = tempfile::tempdir().unwrap();
    let (volume, _volume) = original_volume();
    docker(&[
        "volume",
        "create",
        "--label",
        "team=web",
        &format!("{volume}-x"),
    ]);
    let _labelled = VolumeGuard(format!("{volume}-x"));
    let backed_up = tree(&mountpoint(&volume));
    assert!(backed_up.len() >= 7, "{backed_up:#?}");
    assert!(
        backed_up["conf/site.conf"].ends_with(".123456789"),
        "{backed_up:#?}"
    );

    let daemon = Daemon::start(&config(&repo.path().join("repo"), &volume));
    daemon.wait_ready().await;
    daemon.wait_targets("files").await;
    let backup = daemon.trigger("files").await;
    let job = daemon.wait_job("files", backup, 120).await;
    assert_eq!(job["status"], "success", "{job}");

    fill(&volume, CHANGES);
    let changed = tree(&mountpoint(&volume));
    assert_ne!(changed, backed_up);

    // Restore points: the one backup, with its target and node.
    let target = format!("volume:{volume}");
    let listed = daemon
        .get(&format!("/api/instances/files/snapshots?target={target}"))
        .await;
    let snapshots = listed["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{listed}");
    assert_eq!(snapshots[0]["target"], target.as_str());
    assert!(snapshots[0]["host"].as_str().is_some_and(|h| !h.is_empty()));

    // The dry run says what would happen and changes nothing.
    let copy = format!("{volume}-copy");
    let _copy = VolumeGuard(copy.clone());
    let (status, plan) = restore(
        &daemon,
        json!({ "target": target, "to": copy, "dryRun": true }),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["destination"], copy.as_str());
    assert_eq!(plan["conflicts"], json!([]));
    assert_eq!(plan["steps"][0]["action"], "create volume");
    assert!(plan["files"].as_u64().unwrap() >= 7, "{plan}");
    assert!(plan["bytes"].as_u64().unwrap() >= 300_000, "{plan}");
    assert!(!volume_exists(&copy), "a dry run creates nothing");
    assert_eq!(
        tree(&mountpoint(&volume)),
        changed,
        "a dry run changes nothing"
    );

    // Into a new volume: the original stays as it is.
    let job = restore_job(&daemon, json!({ "target": target, "to": copy })).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["kind"], "restore", "{job}");
    assert_eq!(tree(&mountpoint(&copy)), backed_up);
    assert_eq!(tree(&mountpoint(&volume)), changed);

    // Asking for it again is refused: the volume exists now.
    let (status, refused) = restore(&daemon, json!({ "target": target, "to": copy })).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("exists"),
        "{refused}"
    );

    // A default name is made from the volume's name and the time.
    let (status, plan) = restore(&daemon, json!({ "target": target, "dryRun": true })).await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan["destination"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{volume}-restore-")),
        "{plan}"
    );

    in_place_and_undone(&daemon, &volume, &backed_up, &changed).await;
}

/// Restores `volume` in place while a container uses it, then undoes that with the safety
/// snapshot.
async fn in_place_and_undone(
    daemon: &Daemon,
    volume: &str,
    backed_up: &BTreeMap<String, String>,
    changed: &BTreeMap<String, String>,
) {
    let target = format!("volume:{volume}");
    // In place, with a container using the volume: it is stopped, and running again after.
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let job = restore_job(daemon, json!({ "target": target, "inPlace": true })).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(&tree(&mountpoint(volume)), backed_up);
    assert_eq!(state_of(&app), "running");
    let log = daemon.job_log(job["id"].as_i64().unwrap()).await.join("\n");
    assert!(
        log.contains("Stopping the container while its volume is restored"),
        "{log}"
    );

    // The safety snapshot holds what the in-place restore replaced; restoring it undoes it.
    let listed = daemon
        .get(&format!("/api/instances/files/snapshots?target={target}"))
        .await;
    let saved = pre_restore_snapshots(&listed);
    assert_eq!(saved.len(), 1, "{listed}");
    let (status, plan) = restore(daemon, json!({ "target": target, "dryRun": true })).await;
    assert_eq!(status, 200);
    assert_ne!(
        plan["snapshot"]["id"], saved[0]["id"],
        "latest means the latest backup, not a safety snapshot"
    );
    let job = restore_job(
        daemon,
        json!({ "target": target, "snapshot": saved[0]["id"], "inPlace": true }),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(&tree(&mountpoint(volume)), changed);
    assert_eq!(state_of(&app), "running");
}

/// The volumes whose names start with one of `names` (a test's own, and what a restore would
/// name after them): the other tests of this binary create and remove volumes meanwhile.
fn volumes_named_after(names: &[&str]) -> Vec<String> {
    docker(&["volume", "ls", "-q"])
        .lines()
        .filter(|v| names.iter().any(|name| v.starts_with(name)))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn bad_restore_requests_are_refused_with_the_reason_and_change_nothing() {
    require_engine_and_images();
    let repo = tempfile::tempdir().unwrap();
    let (volume, _volume) = original_volume();
    let (other, _other) = plain_volume("echo other > /data/file");
    let daemon = Daemon::start(&config_of(&repo.path().join("repo"), &[&volume, &other]));
    daemon.wait_ready().await;
    daemon.wait_targets("files").await;
    let backup = daemon.trigger("files").await;
    assert_eq!(
        daemon.wait_job("files", backup, 120).await["status"],
        "success"
    );
    let target = format!("volume:{volume}");
    let listed = daemon
        .get(&format!(
            "/api/instances/files/snapshots?target=volume:{other}"
        ))
        .await;
    let other_snapshot = listed["snapshots"][0]["id"].as_str().unwrap().to_owned();
    let before = tree(&mountpoint(&volume));
    let volumes_before = volumes_named_after(&[&volume, &other]);

    let cases = [
        (
            "/api/instances/nobody/restore",
            json!({ "target": target }),
            404,
            "no instance",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": volume }),
            400,
            "volume:<volume name>",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": target, "snapshot": "yesterday" }),
            400,
            "snapshot",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": target, "snapshot": "0123456789abcdef" }),
            404,
            "no snapshot",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": target, "snapshot": other_snapshot }),
            400,
            "not volume:",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": target, "to": other }),
            409,
            "exists",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": target, "to": "x", "inPlace": true }),
            400,
            "exclude each other",
        ),
        (
            "/api/instances/files/restore",
            json!({ "target": target, "force": true }),
            400,
            "unknown field",
        ),
        (
            "/api/instances/other/restore",
            json!({ "target": target }),
            404,
            "no snapshot of",
        ),
    ];
    for (path, body, status, says) in cases {
        let (got, answer) = daemon.post_json(path, &body).await;
        assert_eq!(got, status, "{path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "{path} {body}: {error:?} should say {says:?}"
        );
    }
    assert_eq!(tree(&mountpoint(&volume)), before);
    assert_eq!(volumes_named_after(&[&volume, &other]), volumes_before);
    let jobs = daemon.get("/api/jobs?instanceId=files").await;
    assert_eq!(
        jobs.as_array().unwrap().len(),
        1,
        "a refused restore leaves no job behind: {jobs}"
    );
}

#[tokio::test]
async fn a_crash_during_an_in_place_restore_leaves_the_containers_running_and_the_safety_snapshot_whole()
 {
    require_engine_and_images();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let (volume, _volume) = original_volume();
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let daemon = Daemon::start_in_with_env(
        dir,
        &config(&repo, &volume),
        &[("MARINA_FAULT_HANG", "restore-before-replace")],
    );
    daemon.wait_ready().await;
    daemon.wait_targets("files").await;
    let backup = daemon.trigger("files").await;
    assert_eq!(
        daemon.wait_job("files", backup, 120).await["status"],
        "success"
    );
    fill(&volume, CHANGES);
    let changed = tree(&mountpoint(&volume));

    let target = format!("volume:{volume}");
    let (status, answer) = restore(&daemon, json!({ "target": target, "inPlace": true })).await;
    assert_eq!(status, 202, "{answer}");
    let job = answer["jobId"].as_i64().unwrap();
    daemon.wait_log_line(job, "MARINA_FAULT_HANG").await;
    assert_eq!(
        state_of(&app),
        "exited",
        "the restore stopped the container"
    );

    let dir = daemon.crash();
    assert_eq!(
        state_of(&app),
        "exited",
        "nobody started it while Marina was down"
    );
    let daemon = Daemon::start_in(dir, &config(&repo, &volume));
    daemon.wait_ready().await;
    support::eventually(30, "the stopped container runs again", || {
        state_of(&app) == "running"
    })
    .await;
    let finished = daemon.wait_job("files", job, 30).await;
    assert_eq!(finished["status"], "aborted", "{finished}");
    assert_eq!(
        tree(&mountpoint(&volume)),
        changed,
        "nothing was replaced yet"
    );

    let listed = daemon
        .get(&format!("/api/instances/files/snapshots?target={target}"))
        .await;
    let saved = pre_restore_snapshots(&listed);
    assert_eq!(saved.len(), 1, "{listed}");
    let copy = format!("{volume}-saved");
    let _copy = VolumeGuard(copy.clone());
    let job = restore_job(
        &daemon,
        json!({ "target": target, "snapshot": saved[0]["id"], "to": copy }),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(
        tree(&mountpoint(&copy)),
        changed,
        "the safety snapshot is whole"
    );
}
