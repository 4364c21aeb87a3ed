//! Volume paths never leave their volume: a symlink in a volume (written by whatever container
//! mounts it) that points out of the volume fails the target instead of backing up the host's
//! or the helper's own files, while links that stay inside the volume keep working. Real
//! engine, the real `marina` binary as a host process, restic repositories restored to check.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::{Path, PathBuf};

use support::daemon::Daemon;
use support::{BUSYBOX_IMAGE, docker, require_engine_and_images};

const PASSWORD: &str = "paths-restic-password";

fn volume_dir(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

/// A directory on the host holding `x/secret.txt` with a marker no volume contains.
fn host_secret() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("host-secret-{}-{}", std::process::id(), rand_suffix());
    std::fs::create_dir_all(dir.path().join("x")).unwrap();
    std::fs::write(dir.path().join("x/secret.txt"), &marker).unwrap();
    (dir, marker)
}

/// Distinguishes markers of two runs of the same process id.
fn rand_suffix() -> String {
    support::unique_name("m")
        .rsplit('-')
        .next()
        .unwrap()
        .to_owned()
}

/// Every file's bytes under `root`, concatenated: where a marker would show up.
fn all_contents(root: &Path) -> String {
    let mut text = String::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                text.push_str(&String::from_utf8_lossy(
                    &std::fs::read(entry.path()).unwrap(),
                ));
                text.push('\n');
            }
        }
    }
    text
}

fn restic(repo: &Path, args: &[&str]) -> std::process::Output {
    support::restore::restic(repo, PASSWORD, args)
}

#[tokio::test]
async fn in_place_reads_refuse_links_out_of_the_volume_and_follow_links_inside_it() {
    require_engine_and_images();
    let (host, marker) = host_secret();
    let (escaping, _escaping) = support::plain_volume(&format!(
        "ln -s '{}' /data/uploads && echo volume-own > /data/own.txt",
        host.path().display()
    ));
    let (inside, _inside) = support::plain_volume(
        "mkdir -p /data/data/x && echo kept-inside > /data/data/x/file.txt && ln -s data /data/uploads",
    );
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let marina = Daemon::start(&format!(
        "instances:\n  - id: paths\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n    targets:\n      - volume: {escaping}\n        paths: [uploads/x]\n      - volume: {inside}\n        paths: [uploads/x]\n",
        repo.display()
    ));
    marina.wait_ready().await;
    marina
        .wait_for("/api/targets", 20, "both volumes", |t| {
            t.to_string().contains(&escaping) && t.to_string().contains(&inside)
        })
        .await;

    let id = marina.trigger("paths").await;
    let job = marina.wait_job("paths", id, 300).await;
    let log = marina.job_log(id).await;
    assert_eq!(job["status"], "partial_success", "{job}\n{log:#?}");
    let expected = format!(
        "path /uploads/x of volume {escaping} escapes the volume: uploads is a symlink to {}",
        host.path().display()
    );
    assert!(
        log.iter().any(|l| l.contains(&expected)),
        "no `{expected}` in {log:#?}"
    );

    // No snapshot holds the host's file; the one that exists restores the linked data.
    let restored = tempfile::tempdir().unwrap();
    let output = restic(
        &repo,
        &[
            "restore",
            "latest",
            "--target",
            restored.path().to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = restic(&repo, &["ls", "--long", "latest"]);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let snapshots = restic(&repo, &["snapshots", "--json"]);
    let snapshots = String::from_utf8_lossy(&snapshots.stdout).into_owned();
    assert!(
        !snapshots.contains(&format!("volume:{escaping}")),
        "the escaping volume has a snapshot: {snapshots}"
    );
    assert!(!listing.contains("secret.txt"), "{listing}");
    assert!(
        !all_contents(restored.path()).contains(&marker),
        "the host's secret is in the repository"
    );
    let real = volume_dir(&inside).join("data/x/file.txt");
    let restored_file = restored.path().join(real.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(&restored_file).unwrap_or_else(|e| panic!(
            "{} was not restored ({e}); the snapshot holds:\n{listing}",
            restored_file.display()
        )),
        "kept-inside\n"
    );
}

const LISTER: &str = r#"#!/bin/sh
find /backup | sort | sed 's/^/ENTRY /'
find /backup -type f | while read -r f; do echo "CONTENT $f: $(head -c 200 "$f" | tr -d '\n')"; done
"#;

#[tokio::test]
async fn the_helper_copy_refuses_links_out_of_the_volume() {
    require_engine_and_images();
    let image = format!("marina-test/paths-lister:{}", std::process::id());
    let _image = support::build_image(
        &image,
        &format!("FROM {BUSYBOX_IMAGE}\nCOPY backup.sh /backup.sh\n"),
        &[("backup.sh", LISTER)],
    );
    let (host, marker) = host_secret();
    let (to_host, _to_host) =
        support::plain_volume(&format!("ln -s '{}' /data/uploads", host.path().display()));
    // Inside the helper, /bin is the helper's own: copying it is as wrong as copying the host's.
    let (to_helper, _to_helper) = support::plain_volume("ln -s /bin /data/tools");
    let (inside, _inside) = support::plain_volume(
        "mkdir -p /data/data/x && echo kept-inside > /data/data/x/file.txt && ln -s data /data/uploads",
    );
    let marina = Daemon::start(&format!(
        "instances:\n  - id: copies\n    customImage: {image}\n    schedule: '0 3 * * *'\n    targets:\n      - volume: {to_host}\n        paths: [uploads/x]\n      - volume: {to_helper}\n        paths: [tools/busybox]\n      - volume: {inside}\n        paths: [uploads/x]\n"
    ));
    marina.wait_ready().await;
    marina
        .wait_for("/api/targets", 20, "the three volumes", |t| {
            let t = t.to_string();
            t.contains(&to_host) && t.contains(&to_helper) && t.contains(&inside)
        })
        .await;

    let id = marina.trigger("copies").await;
    let job = marina.wait_job("copies", id, 300).await;
    let log = marina.job_log(id).await;
    assert_eq!(job["status"], "partial_success", "{job}\n{log:#?}");
    for expected in [
        format!(
            "path /uploads/x of volume {to_host} escapes the volume: uploads is a symlink to {}",
            host.path().display()
        ),
        format!(
            "path /tools/busybox of volume {to_helper} escapes the volume: tools is a symlink to /bin"
        ),
    ] {
        assert!(
            log.iter().any(|l| l.contains(&expected)),
            "no `{expected}` in {log:#?}"
        );
    }
    let entries: Vec<&String> = log.iter().filter(|l| l.contains("ENTRY ")).collect();
    assert!(
        !entries
            .iter()
            .any(|e| e.contains(&to_host) || e.contains(&to_helper)),
        "the refused volumes were staged: {entries:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("/vol/{inside}/uploads/x/file.txt: kept-inside"))),
        "the link inside the volume was not followed: {log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains(&marker)));
}

#[tokio::test]
async fn a_path_inside_another_listed_path_is_staged_once() {
    require_engine_and_images();
    let image = format!("marina-test/paths-overlap:{}", std::process::id());
    let _image = support::build_image(
        &image,
        &format!("FROM {BUSYBOX_IMAGE}\nCOPY backup.sh /backup.sh\n"),
        &[("backup.sh", LISTER)],
    );
    let (volume, _volume) = support::plain_volume(
        "mkdir -p /data/uploads && echo once > /data/uploads/a.txt && echo top > /data/top.txt",
    );
    let marina = Daemon::start(&format!(
        "instances:\n  - id: overlap\n    customImage: {image}\n    schedule: '0 3 * * *'\n    targets:\n      - volume: {volume}\n        paths: ['/', uploads, /uploads]\n"
    ));
    marina.wait_ready().await;
    marina.wait_targets("overlap").await;
    let id = marina.trigger("overlap").await;
    let job = marina.wait_job("overlap", id, 300).await;
    let log = marina.job_log(id).await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    let entries: Vec<&String> = log.iter().filter(|l| l.contains("ENTRY ")).collect();
    for staged in [
        format!("/vol/{volume}/uploads/a.txt: once"),
        format!("/vol/{volume}/top.txt: top"),
    ] {
        assert!(
            log.iter().any(|l| l.contains(&staged)),
            "no `{staged}` in {log:#?}"
        );
    }
    assert!(
        !entries.iter().any(|e| e.contains("/uploads/uploads")),
        "a path inside another was staged twice, nested: {entries:#?}"
    );
}
