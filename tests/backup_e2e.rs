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

const PROBE: &str = r#"#!/bin/sh
echo "MARINA_INSTANCE_ID=$MARINA_INSTANCE_ID"
echo "MARINA_HOSTNAME=$MARINA_HOSTNAME"
echo "MARINA_BACKUP_DIR=$MARINA_BACKUP_DIR"
echo "ENV_NAMES=$(env | cut -d= -f1 | sort | tr '\n' ' ')"
find /backup | sort | sed 's/^/ENTRY /'
case "$MODE" in
  exit3) echo "failing on purpose" >&2; exit 3;;
  hang) echo "hanging now"; sleep 600;;
esac
i=0
while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done
"#;

const PROBE_DOCKERFILE: &str = "FROM marina-test/busybox:latest\nCOPY backup.sh /backup.sh\n";

fn start_postgres(instance: &str) -> ContainerGuard {
    let name = unique_name("pg");
    let guard = ContainerGuard(name.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &name,
        "--env",
        "POSTGRES_PASSWORD=pg-secret-value",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        &format!("dev.polarfox.marina.instanceID={instance}"),
        "--label",
        "dev.polarfox.marina.db=postgres",
        support::DB_IMAGE,
        "postgres",
    ]);
    support::wait_until_exec_succeeds(&name, &["pg_isready", "-U", "postgres"], 60);
    docker(&[
        "exec",
        &name,
        "psql",
        "-U",
        "postgres",
        "-c",
        "CREATE TABLE fish (name text); INSERT INTO fish VALUES ('marlin'), ('dory');",
    ]);
    guard
}

#[tokio::test]
async fn a_custom_image_gets_the_layout_its_variables_and_only_its_own_data() {
    require_engine_and_images();
    let image = format!("marina-test/probe:{}", std::process::id());
    let _image = support::build_image(&image, PROBE_DOCKERFILE, &[("backup.sh", PROBE)]);
    let (volume, _volume) = filled_volume(
        "probe",
        "mkdir -p /data/sub && echo hi > /data/sub/a.txt && echo top > /data/top.txt",
    );
    let pg = start_postgres("probe");
    let config = format!(
        "instances:\n  - id: probe\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{MODE: ok, SECRET_TOKEN: token-never-printed}}\n  - id: other\n    customImage: {image}\n    schedule: '0 4 * * *'\nnodeName: probe-node\n"
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    // Another instance's staging must never be visible to this one.
    let other = marina.dir().join("staging/other/20270101T000000Z");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("secret-of-other"), "x").unwrap();
    marina
        .wait_for("/api/targets", 20, "both targets", |t| {
            t.to_string().contains(&volume) && t.to_string().contains(&pg.0)
        })
        .await;

    let id = marina.trigger("probe").await;
    let job = marina.wait_job("probe", id, 120).await;
    let log = marina.job_log(id).await;
    assert_eq!(job["status"], "success", "{log:#?}");
    let line = |prefix: &str| {
        log.iter()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {log:#?}"))
            .clone()
    };
    assert!(line("MARINA_INSTANCE_ID=").ends_with("MARINA_INSTANCE_ID=probe"));
    assert!(line("MARINA_HOSTNAME=").ends_with("MARINA_HOSTNAME=probe-node"));
    let backup_dir = line("MARINA_BACKUP_DIR=")
        .split('=')
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(
        backup_dir.starts_with("/backup/")
            && backup_dir.ends_with('Z')
            && backup_dir.len() == "/backup/".len() + 16,
        "{backup_dir}"
    );
    let names = line("ENV_NAMES=");
    assert!(
        names.contains("MODE") && names.contains("SECRET_TOKEN"),
        "{names}"
    );
    let entries: Vec<String> = log
        .iter()
        .filter_map(|l| l.split("ENTRY ").nth(1))
        .map(str::to_owned)
        .collect();
    for expected in [
        format!("{backup_dir}/vol/{volume}/sub/a.txt"),
        format!("{backup_dir}/vol/{volume}/top.txt"),
        format!("{backup_dir}/dbs/{}/dump.sql", pg.0),
    ] {
        assert!(
            entries.contains(&expected),
            "{expected} missing from {entries:#?}"
        );
    }
    assert!(
        entries
            .iter()
            .all(|e| e == "/backup" || e.starts_with(&backup_dir)),
        "only the current run is mounted: {entries:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("secret-of-other")));
    let numbered = log.iter().filter(|l| l.starts_with("INFO line ")).count();
    assert_eq!(numbered, 300, "every output line reaches the job log");
    for secret in ["token-never-printed", "pg-secret-value"] {
        assert!(
            !log.iter().any(|l| l.contains(secret)),
            "{secret} leaked into the job log"
        );
    }
    // Nothing is left behind: no container, no staging of this run.
    let leftovers = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("label=dev.polarfox.marina.job={id}"),
    ]);
    assert_eq!(leftovers.trim(), "");
    let staged: Vec<_> = std::fs::read_dir(marina.dir().join("staging/probe"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(staged.is_empty(), "staging left behind: {staged:?}");
}

#[tokio::test]
async fn a_failing_or_hanging_custom_image_fails_the_job_and_leaves_nothing() {
    require_engine_and_images();
    let image = format!("marina-test/probe-fail:{}", std::process::id());
    let _image = support::build_image(&image, PROBE_DOCKERFILE, &[("backup.sh", PROBE)]);
    let (_volume, _guard) = filled_volume("failing,hanging", "echo data > /data/file");
    let config = format!(
        "instances:\n  - id: failing\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{MODE: exit3}}\n  - id: hanging\n    customImage: {image}\n    schedule: '0 3 * * *'\n    timeout: 6s\n    env: {{MODE: hang}}\n"
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina
        .wait_for("/api/instances/hanging", 20, "the target", |i| {
            i["targets"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;

    let failing = marina.trigger("failing").await;
    let hanging = marina.trigger("hanging").await;
    // Live output: the hanging job's first line is in its log while the job still runs.
    marina
        .wait_for(
            &format!("/api/logs/job/{hanging}"),
            20,
            "live output",
            |logs| logs.to_string().contains("hanging now"),
        )
        .await;
    let status = marina.get("/api/status/hanging").await;
    assert_eq!(
        status[0]["isActive"], true,
        "the line arrived while the job was running"
    );

    let job = marina.wait_job("failing", failing, 60).await;
    assert_eq!(job["status"], "failed");
    let log = marina.job_log(failing).await;
    assert!(
        log.iter().any(|l| l.contains("exited with code 3")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("failing on purpose")),
        "stderr reaches the log too: {log:#?}"
    );

    let job = marina.wait_job("hanging", hanging, 60).await;
    assert_eq!(job["status"], "timed_out", "{job}");
    for id in [failing, hanging] {
        let leftovers = docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=dev.polarfox.marina.job={id}"),
        ]);
        assert_eq!(
            leftovers.trim(),
            "",
            "the container of job {id} was removed"
        );
    }
    for instance in ["failing", "hanging"] {
        let staged: Vec<_> = std::fs::read_dir(marina.dir().join("staging").join(instance))
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(
            staged.is_empty(),
            "staging of {instance} left behind: {staged:?}"
        );
    }
}
