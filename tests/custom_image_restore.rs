//! Restores of custom-image instances, end to end: `marina run` against the real engine with
//! the example image of `examples/custom-backup-image/` (built locally on busybox, as no
//! registry is reachable here). A volume is backed up by the image, changed, and brought
//! back through the API — into a new volume and in place — by the image's `/restore.sh`;
//! bytes, modes, owners, symlinks and hard links are compared with what was backed up, and
//! files' modification times to the second (busybox `tar` and `cp` keep no more; directories
//! and symlinks get the time of the extraction, so theirs are not compared). The in-place
//! restore leaves a pre-restore archive whose restore gives the changed state back. A dry
//! run changes nothing; an image without a restore contract is refused with what to add; an
//! image that fails, or exits 0 without leaving the target, fails the job and changes
//! nothing. A redis database comes back through the image too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, ImageGuard, VolumeGuard, build_custom_example_image,
    build_image, docker, docker_output, plain_volume, require_engine_and_images, running_app,
    state_of, unique_name,
};

/// A volume whose files show what a restore must keep: modes, owners, a symlink to
/// nothing, two hard links to one file, an empty directory, a file with an old mtime.
const ORIGINAL: &str = "set -e; mkdir -p /data/conf/empty /data/logs; \
    echo 'listen 80' > /data/conf/site.conf; chmod 0640 /data/conf/site.conf; \
    chown 1234:5678 /data/conf/site.conf; touch -d '2021-03-04 05:06:07' /data/conf/site.conf; \
    head -c 300000 /dev/urandom > /data/logs/big.bin; \
    ln /data/logs/big.bin /data/logs/big-link.bin; \
    ln -s ../missing/target /data/conf/dangling; \
    chmod 0700 /data/logs; chown 42:43 /data/logs";

/// What an operator did after the backup: changed, deleted and added files.
const CHANGES: &str = "set -e; echo 'listen 8080' > /data/conf/site.conf; rm /data/logs/big-link.bin; \
    rm -r /data/conf/empty; echo new > /data/added.txt";

fn mountpoint(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

/// Every entry under `root` with what a restore through the example image keeps: kind,
/// bytes, mode, owner, symlink target, hard links (as the first path of their inode), and
/// the mtime of regular files to the second.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut all = Vec::new();
    let mut pending = vec![root.to_path_buf()];
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
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut entries = BTreeMap::new();
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
                "file {} bytes {:x} inode-of {first} mtime {}",
                bytes.len(),
                digest(&bytes),
                meta.mtime()
            )
        };
        entries.insert(
            name,
            format!(
                "{kind} mode {:o} owner {}:{}",
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
}

fn volume_exists(name: &str) -> bool {
    docker_output(&["volume", "inspect", name]).status.success()
}

/// The names in `dir`, sorted; none when it does not exist.
fn names(dir: &Path) -> Vec<String> {
    let mut names = support::dir_entries(dir);
    names.sort();
    names
}

/// The containers made from `image`, in any state.
fn containers_of(image: &str) -> Vec<String> {
    docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("ancestor={image}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Queues a restore of `instance` and waits for its job; returns the finished job and its
/// log.
async fn restore_job(daemon: &Daemon, instance: &str, body: Value) -> (Value, Vec<String>) {
    let (status, answer) = daemon
        .post_json(&format!("/api/instances/{instance}/restore"), &body)
        .await;
    assert_eq!(status, 202, "restore {body}: {answer}");
    let job = answer["jobId"].as_i64().unwrap();
    let finished = daemon.wait_job(instance, job, 180).await;
    let log = daemon.job_log(job).await;
    (finished, log)
}

/// The archive name a backup.sh run wrote, from its job log.
fn written_archive(log: &[String]) -> String {
    log.iter()
        .find_map(|l| l.split("backup.sh: Wrote ").nth(1))
        .and_then(|rest| rest.split(", sha256 ").next())
        .unwrap_or_else(|| panic!("no archive written in {log:#?}"))
        .to_owned()
}

/// One instance of the example image over `targets` (config lines), with its archives in
/// `/backup/archives`.
fn instance(id: &str, image: &str, extra: &str, targets: &str) -> String {
    format!(
        "  - id: {id}\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{DEST_DIR: /backup/archives, KEEP_LAST: '5'}}\n{extra}    targets:\n{targets}"
    )
}

#[tokio::test]
async fn a_volume_comes_back_through_the_image_into_a_new_volume_and_in_place_and_its_pre_restore_archive_undoes_it()
 {
    require_engine_and_images();
    let (image, _image) = build_custom_example_image();
    let (volume, _volume) = plain_volume(ORIGINAL);
    let backed_up = tree(&mountpoint(&volume));
    assert!(backed_up.len() >= 7, "{backed_up:#?}");
    let id = format!("archive-{}", std::process::id());
    let daemon = Daemon::start(&format!(
        "instances:\n{}nodeName: node-1\n",
        instance(&id, &image, "", &format!("      - volume: {volume}\n"))
    ));
    daemon.wait_ready().await;
    daemon.wait_targets(&id).await;
    let instance_root = daemon.dir().join("staging").join(&id);
    let archives = instance_root.join("archives");
    let backup = daemon.trigger(&id).await;
    let job = daemon.wait_job(&id, backup, 120).await;
    assert_eq!(
        job["status"],
        "success",
        "{job}\n{:#?}",
        daemon.job_log(backup).await
    );
    let scheduled = written_archive(&daemon.job_log(backup).await);

    fill(&volume, CHANGES);
    let changed = tree(&mountpoint(&volume));
    assert_ne!(changed, backed_up);
    let case = Case {
        target: format!("volume:{volume}"),
        daemon,
        id,
        image,
        volume,
        archives,
        instance_root,
        backed_up,
        changed,
        scheduled,
    };
    listing_and_dry_run_change_nothing(&case).await;
    into_a_new_volume(&case).await;
    // Run directories are named by the second they started: keep the jobs apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    in_place_and_undone(&case).await;
}

/// The volume restore under test: the daemon, the instance, and the volume's states.
struct Case {
    daemon: Daemon,
    id: String,
    image: String,
    volume: String,
    target: String,
    /// The instance's staging directory, `/backup` of the image.
    instance_root: PathBuf,
    /// Where the image keeps its archives.
    archives: PathBuf,
    /// The volume when it was backed up.
    backed_up: BTreeMap<String, String>,
    /// The volume after the operator's changes.
    changed: BTreeMap<String, String>,
    /// The archive of the one scheduled backup.
    scheduled: String,
}

/// Marina cannot list the image's backups; the dry run names the image's run first, knows
/// no size, and changes nothing.
async fn listing_and_dry_run_change_nothing(c: &Case) {
    let (daemon, id, image, volume, target) = (&c.daemon, &c.id, &c.image, &c.volume, &c.target);
    let restore_path = format!("/api/instances/{id}/restore");
    let (status, refused) = daemon
        .post_json(
            &restore_path,
            &json!({ "target": target, "snapshot": "a b" }),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let listed = daemon
        .get(&format!("/api/instances/{id}/snapshots?target={target}"))
        .await;
    assert!(
        listed["error"]
            .as_str()
            .is_some_and(|e| e.contains("keeps its own list")),
        "{listed}"
    );

    let copy = format!("{volume}-never");
    let archives_before = names(&c.archives);
    let (status, plan) = daemon
        .post_json(
            &restore_path,
            &json!({ "target": target, "to": copy, "dryRun": true }),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["steps"][0]["action"], "run image", "{plan}");
    let run = plan["steps"][0]["subject"].as_str().unwrap();
    assert!(
        run.contains(image.as_str())
            && run.contains("MARINA_RESTORE=1")
            && run.ends_with("/restore.sh"),
        "{plan}"
    );
    assert_eq!(plan["steps"][1]["action"], "create volume", "{plan}");
    assert_eq!(plan["steps"][2]["action"], "restore files", "{plan}");
    assert_eq!(plan["conflicts"], json!([]));
    assert_eq!(
        (&plan["files"], &plan["bytes"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(plan["snapshot"]["id"], "latest");
    assert!(plan["snapshot"]["time"].is_null(), "{plan}");
    assert!(!volume_exists(&copy), "a dry run creates nothing");
    assert_eq!(
        tree(&mountpoint(volume)),
        c.changed,
        "a dry run changes nothing"
    );
    assert_eq!(names(&c.archives), archives_before);
    assert_eq!(names(&c.instance_root), ["archives"]);
    assert!(
        containers_of(image).is_empty(),
        "the container made to look into the image was removed"
    );
}

/// Into a new volume: the image's newest archive, the original left as it is.
async fn into_a_new_volume(c: &Case) {
    let copy = format!("{}-copy", c.volume);
    let _copy = VolumeGuard(copy.clone());
    let (job, log) = restore_job(&c.daemon, &c.id, json!({ "target": c.target, "to": copy })).await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    assert_eq!(job["kind"], "restore");
    for line in [
        format!(
            "INFO restore.sh: Restoring {} of instance {} from {}",
            c.target, c.id, c.scheduled
        ),
        "INFO restore.sh: Checksum verified: ".to_owned(),
        "INFO restore.sh: Done.".to_owned(),
    ] {
        assert!(
            log.iter().any(|l| l.starts_with(&line)),
            "no `{line}` in {log:#?}"
        );
    }
    assert_eq!(tree(&mountpoint(&copy)), c.backed_up);
    assert_eq!(tree(&mountpoint(&c.volume)), c.changed);
    assert_eq!(
        names(&c.instance_root),
        ["archives"],
        "the run directory is removed"
    );
    assert!(containers_of(&c.image).is_empty());
}

/// In place, with a container using the volume: it is stopped, the image saves what the
/// volume holds first, and the container runs again after; `latest` stays the scheduled
/// backup, and restoring the pre-restore archive by its name undoes the restore.
async fn in_place_and_undone(c: &Case) {
    let (daemon, id, target) = (&c.daemon, &c.id, &c.target);
    let (app, _app) = running_app(&format!("{}:/data", c.volume));
    let (job, log) = restore_job(daemon, id, json!({ "target": target, "inPlace": true })).await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    assert_eq!(tree(&mountpoint(&c.volume)), c.backed_up);
    assert_eq!(state_of(&app), "running");
    assert!(
        log.iter()
            .any(|l| l.starts_with("INFO backup.sh: Pre-restore backup: ")),
        "{log:#?}"
    );
    let saved = written_archive(&log);
    assert!(saved.ends_with("-pre-restore.tar.gz"), "{saved}");
    assert!(
        names(&c.archives).contains(&saved),
        "{:?}",
        names(&c.archives)
    );
    let fetched_at = log
        .iter()
        .position(|l| l.contains("restore.sh: Done."))
        .unwrap();
    let stopped_at = log
        .iter()
        .position(|l| l.contains("Stopping the container while its volume is restored"))
        .unwrap_or_else(|| panic!("{log:#?}"));
    assert!(
        fetched_at < stopped_at,
        "the image fetches the backup before anything is stopped: {log:#?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let again = format!("{}-again", c.volume);
    let _again = VolumeGuard(again.clone());
    let (job, log) = restore_job(daemon, id, json!({ "target": target, "to": again })).await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("from {}", c.scheduled))),
        "`latest` is the scheduled backup, never the pre-restore archive: {log:#?}"
    );
    assert_eq!(tree(&mountpoint(&again)), c.backed_up);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let name = saved.trim_end_matches(".tar.gz");
    let (job, log) = restore_job(
        daemon,
        id,
        json!({ "target": target, "snapshot": name, "inPlace": true }),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    assert_eq!(tree(&mountpoint(&c.volume)), c.changed);
    assert_eq!(state_of(&app), "running");
    assert_eq!(names(&c.instance_root), ["archives"]);
    assert!(containers_of(&c.image).is_empty());
}

/// The example's `backup.sh` alone: an image without a restore contract.
fn build_image_without_restore_contract() -> (String, ImageGuard) {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/custom-backup-image/backup.sh"),
    )
    .unwrap();
    let bare = format!("marina-test/custom-bare:{}", unique_name("img"));
    let guard = build_image(
        &bare,
        &format!("FROM {BUSYBOX_IMAGE}\nCOPY backup.sh /backup.sh\n"),
        &[("backup.sh", &script)],
    );
    (bare, guard)
}

#[tokio::test]
async fn a_restore_the_image_cannot_make_changes_nothing_and_says_why() {
    require_engine_and_images();
    let (image, _image) = build_custom_example_image();
    let (bare, _bare) = build_image_without_restore_contract();
    let (volume, _volume) = plain_volume(ORIGINAL);
    let pid = std::process::id();
    let (archive, without, silent) = (
        format!("archive-{pid}"),
        format!("without-{pid}"),
        format!("silent-{pid}"),
    );
    let targets = format!("      - volume: {volume}\n");
    let daemon = Daemon::start(&format!(
        "instances:\n{}{}{}",
        instance(&archive, &image, "", &targets),
        instance(&without, &bare, "", &targets),
        // It exits 0 without leaving anything to restore from.
        instance(
            &silent,
            &image,
            "    restoreEntrypoint: echo \"asked for $$MARINA_RESTORE_SNAPSHOT\"\n",
            &targets
        ),
    ));
    daemon.wait_ready().await;
    for id in [&archive, &without, &silent] {
        daemon.wait_targets(id).await;
    }
    let backup = daemon.trigger(&archive).await;
    assert_eq!(
        daemon.wait_job(&archive, backup, 120).await["status"],
        "success"
    );
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let before = tree(&mountpoint(&volume));
    let target = format!("volume:{volume}");

    refused_without_a_restore_contract(&daemon, &without, &bare, &target).await;

    // The image fails (no such archive): the job fails with its reason, in place or not.
    let copy = format!("{volume}-copy");
    let _copy = VolumeGuard(copy.clone());
    for body in [
        json!({ "target": target, "snapshot": "20200101T000000Z", "inPlace": true }),
        json!({ "target": target, "snapshot": "20200101T000000Z", "to": copy }),
    ] {
        let (job, log) = restore_job(&daemon, &archive, body.clone()).await;
        assert_eq!(job["status"], "failed", "{body}: {log:#?}");
        let message = job["message"].as_str().unwrap();
        assert!(
            message.contains("the restore image")
                && message.contains("exited with code 1; nothing was changed"),
            "{message}"
        );
        assert!(
            log.iter()
                .any(|l| l.contains("restore.sh: ERROR: there is no archive '20200101T000000Z'")),
            "{log:#?}"
        );
        assert!(
            !log.iter().any(|l| l.contains("Stopping the container")),
            "{log:#?}"
        );
    }
    assert!(!volume_exists(&copy));

    // The command exits 0 but leaves nothing: the job fails, nothing is stopped or saved.
    let (job, log) = restore_job(
        &daemon,
        &silent,
        json!({ "target": target, "snapshot": "some-name", "inPlace": true }),
    )
    .await;
    assert_eq!(job["status"], "failed", "{log:#?}");
    assert!(
        log.iter().any(|l| l == "INFO asked for some-name"),
        "the command ran with the snapshot asked for: {log:#?}"
    );
    let message = job["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("left no vol/{volume} in MARINA_BACKUP_DIR"))
            && message.contains("nothing was changed"),
        "{message}"
    );

    assert_eq!(tree(&mountpoint(&volume)), before, "nothing was changed");
    assert_eq!(state_of(&app), "running", "nothing was stopped");
    for id in [&archive, &silent] {
        let root = daemon.dir().join("staging").join(id.as_str());
        let kept: Vec<String> = names(&root);
        assert!(
            kept.is_empty() || kept == ["archives"],
            "{id}: the run directories are removed: {kept:?}"
        );
        let saved: Vec<String> = names(&root.join("archives"))
            .into_iter()
            .filter(|n| n.contains("pre-restore"))
            .collect();
        assert!(saved.is_empty(), "{id}: nothing was saved: {saved:?}");
    }
    assert!(containers_of(&image).is_empty());
}

/// No restoreEntrypoint, no /restore.sh: refused, dry run or not, saying what to add, and
/// no job is left behind.
async fn refused_without_a_restore_contract(
    daemon: &Daemon,
    without: &str,
    bare: &str,
    target: &str,
) {
    for dry_run in [true, false] {
        let (status, answer) = daemon
            .post_json(
                &format!("/api/instances/{without}/restore"),
                &json!({ "target": target, "inPlace": true, "dryRun": dry_run }),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        for says in [
            "has no restore contract",
            &format!("its image {bare} has no /restore.sh"),
            "Add an executable /restore.sh to the image, or set `restoreEntrypoint`",
        ] {
            assert!(error.contains(says), "{error:?} should say {says:?}");
        }
    }
    let jobs = daemon.get(&format!("/api/jobs?instanceId={without}")).await;
    assert_eq!(jobs, json!([]), "a refused restore leaves no job behind");
    assert!(containers_of(bare).is_empty());
}

fn redis_cli(container: &str, args: &[&str]) -> String {
    let mut all = vec!["exec", container, "redis-cli"];
    all.extend(args);
    docker(&all).trim().to_owned()
}

#[tokio::test]
async fn a_redis_database_comes_back_through_the_image() {
    require_engine_and_images();
    let (image, _image) = build_custom_example_image();
    let id = format!("cache-{}", std::process::id());
    let source = unique_name("redis");
    let _source = ContainerGuard(source.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &source,
        support::DB_IMAGE,
        "redis",
    ]);
    support::wait_until_exec_succeeds(&source, &["redis-cli", "ping"], 90);
    redis_cli(&source, &["mset", "fish", "wanda", "crab", "sebastian"]);
    let read = |container: &str| redis_cli(container, &["mget", "fish", "crab", "added"]);
    let backed_up = read(&source);
    let daemon = Daemon::start(&format!(
        "instances:\n{}",
        instance(
            &id,
            &image,
            "",
            &format!("      - db: {source}\n        dbKind: redis\n")
        )
    ));
    daemon.wait_ready().await;
    daemon.wait_targets(&id).await;
    let backup = daemon.trigger(&id).await;
    let job = daemon.wait_job(&id, backup, 180).await;
    assert_eq!(
        job["status"],
        "success",
        "{job}\n{:#?}",
        daemon.job_log(backup).await
    );
    redis_cli(&source, &["mset", "fish", "changed", "added", "yes"]);
    let changed = read(&source);
    assert_ne!(changed, backed_up);
    let target = format!("db:{source}");

    // Into a new container on no network: the source keeps its changes.
    let copy = format!("{source}-copy");
    let _copy = ContainerGuard(copy.clone());
    let (job, log) = restore_job(&daemon, &id, json!({ "target": target, "to": copy })).await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    support::wait_until_exec_succeeds(&copy, &["redis-cli", "ping"], 90);
    assert_eq!(read(&copy), backed_up);
    assert_eq!(read(&source), changed);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // In place, after a pre-restore backup; that archive brings the changes back.
    let (job, log) = restore_job(&daemon, &id, json!({ "target": target, "inPlace": true })).await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    support::wait_until_exec_succeeds(&source, &["redis-cli", "ping"], 90);
    assert_eq!(read(&source), backed_up);
    let saved = written_archive(&log);
    assert!(saved.ends_with("-pre-restore.tar.gz"), "{saved}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (job, log) = restore_job(
        &daemon,
        &id,
        json!({ "target": target, "snapshot": saved, "inPlace": true }),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}\n{log:#?}");
    support::wait_until_exec_succeeds(&source, &["redis-cli", "ping"], 90);
    assert_eq!(read(&source), changed);
}
