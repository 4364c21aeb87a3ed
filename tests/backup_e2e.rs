//! Backups that really run, end to end: `marina run` against the real engine and real restic
//! repositories; every backup is proven by restoring it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::daemon::Daemon;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, VolumeGuard, docker, require_engine_and_images, unique_name,
};

const PASSWORD: &str = "e2e-restic-password";

/// A restic instance backing up to `repo`, with `extra` lines appended to the instance.
fn restic_instance(id: &str, repo: &Path, extra: &str) -> String {
    format!(
        "  - id: {id}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n{extra}",
        repo.display()
    )
}

fn restic(repo: &Path, args: &[&str]) -> std::process::Output {
    Command::new("restic")
        .args(["--repo"])
        .arg(repo)
        .args(["--no-cache"])
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

fn snapshots(repo: &Path) -> Vec<Value> {
    let output = restic(repo, &["snapshots", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every file, directory and symlink under `root`: relative path → content digest.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = entry.file_type().unwrap();
            let value = if kind.is_symlink() {
                format!(
                    "symlink -> {}",
                    std::fs::read_link(&path).unwrap().display()
                )
            } else if kind.is_dir() {
                pending.push(path.clone());
                "dir".to_owned()
            } else {
                let bytes = std::fs::read(&path).unwrap();
                format!("file {} bytes, digest {:x}", bytes.len(), digest(&bytes))
            };
            entries.insert(relative, value);
        }
    }
    entries
}

/// FNV-1a: enough to tell two contents apart in a test.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn volume_dir(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

/// Creates a labelled volume for `instance` filled by `script` (run in busybox with the
/// volume at /data).
fn filled_volume(instance: &str, script: &str) -> (String, VolumeGuard) {
    let volume = unique_name("vol");
    let guard = VolumeGuard(volume.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        &format!("dev.polarfox.marina.instanceID={instance}"),
        &volume,
    ]);
    let filler = unique_name("fill");
    let _filler = ContainerGuard(filler.clone());
    docker(&[
        "run",
        "--name",
        &filler,
        "-v",
        &format!("{volume}:/data"),
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
    (volume, guard)
}

const TRICKY_TREE: &str = "set -e; mkdir -p '/data/dir with spaces/nested/deeper'; echo hello > '/data/dir with spaces/nested/deeper/file name.txt'; \
    : > /data/empty-file; ln -s 'dir with spaces/nested' /data/link; \
    head -c 104857600 /dev/urandom > /data/random.bin; echo small > /data/dir\\ with\\ spaces/a";

#[tokio::test]
async fn a_volume_is_backed_up_restored_byte_identical_and_then_incrementally() {
    require_engine_and_images();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let (volume, _volume) = filled_volume("files", TRICKY_TREE);
    let marina = Daemon::start(&format!(
        "instances:\n{}",
        restic_instance("files", &repo, "")
    ));
    marina.wait_ready().await;
    marina
        .wait_for("/api/targets", 10, "the labelled volume", |t| {
            t.to_string().contains(&volume)
        })
        .await;

    let first = marina.trigger("files").await;
    let job = marina.wait_job("files", first, 300).await;
    assert_eq!(
        job["status"],
        "success",
        "{job}\n{:#?}",
        marina.job_log(first).await
    );
    assert_eq!(job["lastTargetsSuccessful"], 1);

    let first_snapshot = snapshots(&repo)[0]["id"].as_str().unwrap().to_owned();
    let restored = tempfile::tempdir().unwrap();
    let output = Command::new("restic")
        .args(["--repo"])
        .arg(&repo)
        .args(["--no-cache", "restore", "latest", "--target"])
        .arg(restored.path())
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let source = volume_dir(&volume);
    let restored_root = restored.path().join(source.strip_prefix("/").unwrap());
    let original = tree(&source);
    assert_eq!(
        tree(&restored_root),
        original,
        "the restored tree differs from the volume"
    );
    assert!(original.contains_key(Path::new("empty-file")));
    assert_eq!(
        original[Path::new("link")],
        "symlink -> dir with spaces/nested"
    );

    let second = marina.trigger("files").await;
    let job = marina.wait_job("files", second, 300).await;
    assert_eq!(job["status"], "success");
    // Retention (7 daily) keeps one snapshot per day: the second replaced the first.
    let all = snapshots(&repo);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0]["parent"],
        first_snapshot.as_str(),
        "the second snapshot's parent is the first"
    );
    let tags: Vec<&str> = all[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        ["marina", "instance:files", &format!("volume:{volume}")]
    );
    let log = marina.job_log(second).await;
    let summary = log.iter().find(|l| l.contains("Target backed up")).unwrap();
    assert!(
        summary.contains("0 new, 0 changed, 4 unmodified files; 0 B added"),
        "{summary}"
    );
}
