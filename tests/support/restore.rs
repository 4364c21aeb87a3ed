//! Proving a backup by reading it back: restic run against the repository the test owns.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `restic --repo REPO --no-cache ARGS` with `password`.
pub fn restic(repo: &Path, password: &str, args: &[&str]) -> Output {
    Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", password)
        .output()
        .expect("run restic")
}

/// The repository's snapshots (`restic snapshots --json`).
pub fn snapshots(repo: &Path, password: &str) -> Vec<Value> {
    let output = restic(repo, password, &["snapshots", "--json"]);
    assert!(
        output.status.success(),
        "restic snapshots: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("snapshots as JSON")
}

/// The bytes of the file called `name` in `snapshot`, wherever it lies in the snapshot's
/// tree (found with `restic ls`, read with `restic dump`).
pub fn file_in_snapshot(repo: &Path, password: &str, snapshot: &str, name: &str) -> Vec<u8> {
    let listing = restic(repo, password, &["ls", "--json", snapshot]);
    assert!(
        listing.status.success(),
        "restic ls: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let path = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|node| node["type"] == "file" && node["name"] == name)
        .and_then(|node| node["path"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no file `{name}` in snapshot {snapshot}"));
    let dump = restic(repo, password, &["dump", snapshot, &path]);
    assert!(
        dump.status.success(),
        "restic dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    dump.stdout
}

/// The newest snapshot in `repo` holds a file `name` with exactly `content`.
pub fn assert_latest_holds(repo: &Path, password: &str, name: &str, content: &str) {
    let snapshots = snapshots(repo, password);
    let latest = snapshots.last().expect("a snapshot");
    let id = latest["id"].as_str().expect("a snapshot id");
    let restored = file_in_snapshot(repo, password, id, name);
    assert_eq!(String::from_utf8_lossy(&restored), content);
}
