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
    BUSYBOX_IMAGE, ContainerGuard, VolumeGuard, docker, filled_volume, require_engine_and_images,
    state_of, unique_name,
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
    support::restore::restic(repo, PASSWORD, args)
}

fn snapshots(repo: &Path) -> Vec<Value> {
    support::restore::snapshots(repo, PASSWORD)
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
    let target = restored.path().to_str().unwrap();
    let output = restic(&repo, &["restore", "latest", "--target", target]);
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
    // Nothing re-read; at most a little metadata (a directory's new tree) is added.
    assert!(
        summary.contains("0 new, 0 changed, 4 unmodified files; "),
        "{summary}"
    );
    assert!(
        summary.ends_with(" B added.") || summary.ends_with(" KiB added."),
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
        "/backup (the instance's staging directory) holds only the current run: {entries:#?}"
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
    let leftovers = leftovers(id, "probe", &volume);
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
    let (volume, _guard) = filled_volume("failing,hanging", "echo data > /data/file");
    let config = format!(
        "instances:\n  - id: failing\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{MODE: exit3}}\n  - id: hanging\n    customImage: {image}\n    schedule: '0 3 * * *'\n    timeout: 6s\n    env: {{MODE: hang}}\n"
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("hanging").await;

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
    for (id, instance) in [(failing, "failing"), (hanging, "hanging")] {
        let leftovers = leftovers(id, instance, &volume);
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

/// Containers of job `id` of this test's daemon still there: its backend containers (labelled
/// with `instance`) and its helper containers (mounting `volume`). Job ids restart at 1 in
/// every test daemon, so the job label alone would also match other tests' containers.
fn leftovers(id: i64, instance: &str, volume: &str) -> String {
    let job = format!("label=dev.polarfox.marina.job={id}");
    let backend = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &job,
        "--filter",
        &format!("label=dev.polarfox.marina.instance={instance}"),
    ]);
    let helper = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &job,
        "--filter",
        &format!("volume={volume}"),
    ]);
    format!("{}{}", backend.trim(), helper.trim())
}

/// A helper image whose `sh` waits `seconds` before copying: staging that takes a while.
const SLOW_SH: &str = "#!/bin/busybox sh\nsleep 6\nexec /bin/busybox sh \"$@\"\n";

#[tokio::test]
async fn stop_attached_stops_the_app_while_staging_and_a_crash_is_repaired_at_restart() {
    require_engine_and_images();
    let helper = format!("marina-test/slow-helper:{}", std::process::id());
    let _helper = support::build_image(
        &helper,
        "FROM marina-test/busybox:latest\nRUN [\"/bin/busybox\", \"rm\", \"/bin/sh\"]\nCOPY sh /bin/sh\n",
        &[("sh", SLOW_SH)],
    );
    let image = format!("marina-test/probe-stop:{}", std::process::id());
    let _image = support::build_image(&image, PROBE_DOCKERFILE, &[("backup.sh", PROBE)]);
    let (volume, _volume) = filled_volume("app", "echo data > /data/file");
    let app = unique_name("app");
    let _app = ContainerGuard(app.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &app,
        "-v",
        &format!("{volume}:/data"),
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    let config = format!(
        "instances:\n  - id: app\n    customImage: {image}\n    schedule: '0 3 * * *'\n    stopAttached: true\n    env: {{MODE: ok}}\nhelperImage: {helper}\n"
    );

    // A normal run: stopped while staged, running again afterwards.
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("app").await;
    let id = marina.trigger("app").await;
    support::eventually(20, "the app container stopped for staging", || {
        state_of(&app) == "exited"
    })
    .await;
    let job = marina.wait_job("app", id, 60).await;
    assert_eq!(job["status"], "success", "{:#?}", marina.job_log(id).await);
    assert_eq!(state_of(&app), "running");

    // Killed (-9) while the app is stopped: the next start starts it again and aborts the job.
    let id = marina.trigger("app").await;
    support::eventually(20, "the app container stopped for staging", || {
        state_of(&app) == "exited"
    })
    .await;
    let dir = marina.crash();
    assert_eq!(state_of(&app), "exited", "nobody restarted it yet");
    let marina = Daemon::start_in(dir, &config);
    marina.wait_ready().await;
    support::eventually(20, "the app container running again", || {
        state_of(&app) == "running"
    })
    .await;
    let jobs = marina.get("/api/status/app").await;
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap();
    assert_eq!(job["status"], "aborted", "{job}");
    let leftovers = leftovers(id, "app", &volume);
    assert_eq!(
        leftovers.trim(),
        "",
        "the crashed job's helper container was removed"
    );
    let staged: Vec<_> = std::fs::read_dir(marina.dir().join("staging/app"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(staged.is_empty(), "stale staging removed: {staged:?}");
}

#[tokio::test]
async fn retention_keeps_one_snapshot_per_target_and_jobs_queue_behind_the_limit() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    let (a, _a) = filled_volume("keep1", "echo a > /data/a");
    let (b, _b) = filled_volume("keep1", "echo b > /data/b");
    let config = format!(
        "instances:\n{}{}{}maxConcurrentJobs: 1\n",
        restic_instance(
            "keep1",
            &repos.path().join("keep1"),
            "    retention: 1d:0w:0m\n"
        ),
        restic_instance("second", &repos.path().join("second"), ""),
        restic_instance("third", &repos.path().join("third"), ""),
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina
        .wait_for("/api/instances/keep1", 20, "both targets", |i| {
            i["targets"].as_array().is_some_and(|t| t.len() == 2)
        })
        .await;
    for _ in 0..3 {
        let id = marina.trigger("keep1").await;
        let job = marina.wait_job("keep1", id, 120).await;
        assert_eq!(job["status"], "success");
    }
    let all = snapshots(&repos.path().join("keep1"));
    let mut per_target: BTreeMap<String, usize> = BTreeMap::new();
    for snapshot in &all {
        let tag = snapshot["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .find(|t| t.starts_with("volume:"))
            .unwrap();
        *per_target.entry(tag).or_default() += 1;
    }
    assert_eq!(
        per_target,
        BTreeMap::from([(format!("volume:{a}"), 1), (format!("volume:{b}"), 1)])
    );

    // maxConcurrentJobs 1: three instances triggered together run one after another, and a
    // running instance cannot be triggered again.
    let (_c, _c_guard) = filled_volume("second,third", "head -c 20000000 /dev/urandom > /data/big");
    marina
        .wait_for("/api/instances/third", 20, "the shared target", |i| {
            i["targets"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;
    let ids = [
        marina.trigger("keep1").await,
        marina.trigger("second").await,
        marina.trigger("third").await,
    ];
    let (status, answer) = marina.post("/api/instances/second/backup").await;
    assert_eq!(status, 409, "{answer}");
    let (status, _) = marina.post("/api/instances/nope/backup").await;
    assert_eq!(status, 404);
    let mut spans = Vec::new();
    for (instance, id) in ["keep1", "second", "third"].into_iter().zip(ids) {
        let job = marina.wait_job(instance, id, 180).await;
        assert_eq!(job["status"], "success", "{job}");
        spans.push((
            job["lastStartedAt"].as_str().unwrap().to_owned(),
            job["lastCompletedAt"].as_str().unwrap().to_owned(),
        ));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "jobs overlapped: {spans:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_fails_clearly_and_one_bad_repository_does_not_hold_up_another() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("locked");
    let init = Command::new("restic")
        .arg("--repo")
        .arg(&repo)
        .args(["--no-cache", "init"])
        .env("RESTIC_PASSWORD", "the-real-password")
        .output()
        .unwrap();
    assert!(init.status.success());
    let keys_before = std::fs::read_dir(repo.join("keys")).unwrap().count();
    let config_before = std::fs::read(repo.join("config")).unwrap();
    let (_v, _guard) = filled_volume("locked,healthy,unreachable", "echo x > /data/x");
    let config = format!(
        "instances:\n{}{}  - id: unreachable\n    repository: sftp:nobody@192.0.2.1:/nowhere\n    schedule: '0 3 * * *'\n    resticTimeout: 60s\n    env: {{RESTIC_PASSWORD: x}}\nmaxConcurrentJobs: 3\n",
        restic_instance("locked", &repo, ""),
        restic_instance("healthy", &repos.path().join("healthy"), ""),
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("healthy").await;
    let unreachable = marina.trigger("unreachable").await;
    let locked = marina.trigger("locked").await;
    let healthy = marina.trigger("healthy").await;

    let job = marina.wait_job("healthy", healthy, 60).await;
    assert_eq!(
        job["status"], "success",
        "a healthy repository is not held up by the others"
    );
    let job = marina.wait_job("locked", locked, 60).await;
    assert_eq!(job["status"], "failed");
    let log = marina.job_log(locked).await.join("\n");
    assert!(log.to_lowercase().contains("password"), "{log}");
    assert!(!log.contains(PASSWORD), "the password is never printed");
    assert_eq!(
        std::fs::read_dir(repo.join("keys")).unwrap().count(),
        keys_before,
        "no key was added"
    );
    assert_eq!(
        std::fs::read(repo.join("config")).unwrap(),
        config_before,
        "the repository was not re-initialised"
    );
    let status = marina.get("/api/status/unreachable").await;
    assert!(status[0]["id"] == unreachable, "{status}");
}

/// Starts a labelled database container of the test image for instance `dbs`.
fn start_db(kind: &str, label_kind: &str, env: &[&str], ready: &[&str]) -> ContainerGuard {
    let name = unique_name(kind);
    let guard = ContainerGuard(name.clone());
    let mut args = vec!["run", "--detach", "--name", &name];
    for var in env {
        args.extend(["--env", var]);
    }
    let kind_label = format!("dev.polarfox.marina.db={label_kind}");
    args.extend([
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=dbs",
        "--label",
        &kind_label,
        support::DB_IMAGE,
        kind,
    ]);
    docker(&args);
    support::wait_until_exec_succeeds(&name, ready, 60);
    guard
}

/// Pipes `input` into `docker exec -i container args…`.
fn exec_with_input(container: &str, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(["exec", "-i", container])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // One scenario: three databases backed up, then restored.
async fn database_dumps_are_streamed_into_restic_and_restore_into_fresh_servers() {
    require_engine_and_images();
    let pg = start_db(
        "postgres",
        "postgres",
        &["POSTGRES_PASSWORD=pg-pass"],
        &["pg_isready", "-U", "postgres"],
    );
    let mariadb = start_db(
        "mariadb",
        "auto",
        &["MARIADB_ROOT_PASSWORD=mariadb-pass"],
        &["mariadb-admin", "ping", "--silent"],
    );
    let redis = start_db("redis", "redis", &[], &["redis-cli", "ping"]);
    // Auto-detection looks at the image name, which says nothing here, and then for dump
    // tools in the container, of which the test image has three engines' (ambiguous): the
    // mariadb container is told its kind by config below instead.
    docker(&[
        "exec",
        &pg.0,
        "psql",
        "-U",
        "postgres",
        "-c",
        "CREATE TABLE fish (name text); INSERT INTO fish VALUES ('marlin'), ('dory');",
    ]);
    docker(&[
        "exec",
        &mariadb.0,
        "mariadb",
        "-e",
        "CREATE DATABASE sea; CREATE TABLE sea.fish (name text); INSERT INTO sea.fish VALUES ('nemo');",
    ]);
    docker(&["exec", &redis.0, "redis-cli", "set", "fish", "wanda"]);

    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("dbs-repo");
    let marina = Daemon::start(&format!(
        "instances:\n{}",
        restic_instance("dbs", &repo, "")
    ));
    marina.wait_ready().await;
    let maria_target = format!("db:{}", mariadb.0);
    let targets = marina
        .wait_for(
            "/api/instances/dbs",
            40,
            "the three databases, the mariadb one's dump tools looked for",
            |i| {
                i["targets"].as_array().is_some_and(|t| {
                    t.len() == 3
                        && t.iter().any(|t| {
                            t["id"] == maria_target
                                && t["conditions"][0]["reason"] != "DbKindProbing"
                        })
                })
            },
        )
        .await;
    let maria_ready = &targets["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == maria_target)
        .unwrap()["conditions"][0];
    assert_eq!(
        (&maria_ready["status"], &maria_ready["reason"]),
        (&"False".into(), &"DbKindUnknown".into()),
        "neither this image's name nor its tools (three engines') tell: {maria_ready}"
    );
    // Tell Marina the kind through config instead, which wins over the label.
    marina.replace_config(&format!(
        "instances:\n{}    targets:\n      - db: {}\n        dbKind: mariadb\n",
        restic_instance("dbs", &repo, ""),
        mariadb.0
    ));
    marina
        .wait_for(
            "/api/instances/dbs",
            20,
            "all three ready, mariadb as configured",
            |i| {
                i["targets"].as_array().is_some_and(|t| {
                    t.len() == 3
                        && t.iter().all(|t| t["conditions"][0]["status"] == "True")
                        && t.iter().any(|t| {
                            t["id"] == format!("db:{}", mariadb.0) && t["dbKind"] == "mariadb"
                        })
                })
            },
        )
        .await;

    let id = marina.trigger("dbs").await;
    let job = marina.wait_job("dbs", id, 180).await;
    assert_eq!(job["status"], "success", "{:#?}", marina.job_log(id).await);
    let log = marina.job_log(id).await.join("\n");
    for secret in ["pg-pass", "mariadb-pass"] {
        assert!(!log.contains(secret), "{secret} leaked into the job log");
    }
    let dump = |name: &str, file: &str| {
        let output = restic(
            &repo,
            &[
                "dump",
                "latest",
                &format!("/{name}/{file}"),
                "--tag",
                &format!("db:{name}"),
            ],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };

    // Restore each dump into a fresh server of the same image and read the data back.
    let fresh_pg = start_db(
        "postgres",
        "postgres",
        &["POSTGRES_PASSWORD=other"],
        &["pg_isready", "-U", "postgres"],
    );
    exec_with_input(
        &fresh_pg.0,
        &["psql", "-U", "postgres", "-q", "-o", "/dev/null"],
        &dump(&pg.0, "dump.sql"),
    );
    let rows = docker(&[
        "exec",
        &fresh_pg.0,
        "psql",
        "-U",
        "postgres",
        "-tA",
        "-c",
        "SELECT name FROM fish ORDER BY name",
    ]);
    assert_eq!(rows.trim(), "dory\nmarlin");

    let fresh_maria = start_db(
        "mariadb",
        "mariadb",
        &["MARIADB_ROOT_PASSWORD=other"],
        &["mariadb-admin", "ping", "--silent"],
    );
    exec_with_input(
        &fresh_maria.0,
        &["mariadb", "--force"],
        &dump(&mariadb.0, "dump.sql"),
    );
    let rows = docker(&[
        "exec",
        &fresh_maria.0,
        "mariadb",
        "-N",
        "-e",
        "SELECT name FROM sea.fish",
    ]);
    assert_eq!(rows.trim(), "nemo");

    let rdb = dump(&redis.0, "dump.rdb");
    assert!(rdb.starts_with(b"REDIS"));
    // A fresh redis loads dump.rdb from its data directory at start.
    let data = unique_name("redis-data");
    let _data = VolumeGuard(data.clone());
    let mount = format!("{data}:/data");
    let loader = unique_name("loader");
    let _loader = ContainerGuard(loader.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &loader,
        "-v",
        &mount,
        BUSYBOX_IMAGE,
        "sleep",
        "600",
    ]);
    exec_with_input(&loader, &["sh", "-c", "cat > /data/dump.rdb"], &rdb);
    let fresh_redis = unique_name("redis-restore");
    let _fresh_redis = ContainerGuard(fresh_redis.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &fresh_redis,
        "-v",
        &mount,
        support::DB_IMAGE,
        "redis",
    ]);
    support::wait_until_exec_succeeds(&fresh_redis, &["redis-cli", "ping"], 60);
    assert_eq!(
        docker(&["exec", &fresh_redis, "redis-cli", "get", "fish"]).trim(),
        "wanda"
    );
}

#[tokio::test]
async fn marina_backup_triggers_the_daemon_and_the_job_can_be_followed() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    let (_volume, _guard) = filled_volume("cli", "echo cli > /data/file");
    let marina = Daemon::start(&format!(
        "instances:\n{}",
        restic_instance("cli", &repos.path().join("cli"), "")
    ));
    marina.wait_ready().await;
    marina.wait_targets("cli").await;

    let output = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["backup", "cli", "--url", &marina.base_url])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let id: i64 = printed
        .trim()
        .trim_start_matches("Backup of cli queued as job ")
        .trim_end_matches('.')
        .parse()
        .unwrap_or_else(|_| panic!("{printed}"));
    let job = marina.wait_job("cli", id, 120).await;
    assert_eq!(job["status"], "success");
    assert_eq!(job["iid"], 1);

    let schedules = marina.get("/api/schedules").await;
    assert_eq!(schedules[0]["latestJobStatus"], "success");
    assert!(schedules[0]["latestJobCompletedAt"].is_string());
    let jobs = marina.get("/api/jobs?instanceId=cli&status=success").await;
    assert_eq!(jobs[0]["id"], id);
    assert_eq!(jobs[0]["trigger"], "manual");
    let logs = marina.get("/api/logs/job?instanceId=cli&limit=1000").await;
    let lines = logs.as_array().unwrap();
    assert!(
        lines
            .iter()
            .all(|l| l["jobStatusId"] == id && l["jobStatusIid"] == 1 && l["instanceId"] == "cli")
    );
    assert!(lines.iter().any(|l| {
        l["targetId"]
            .as_str()
            .is_some_and(|t| t.starts_with("volume:"))
    }));
    let system = marina.get("/api/logs/system?limit=50").await;
    assert!(
        system
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["jobStatusId"].is_null())
    );
    let (status, answer) = marina.post("/api/instances/nope/backup").await;
    assert_eq!((status, answer["error"].as_str().is_some()), (404, true));

    for bad in [
        "/api/logs/job/not-a-number",
        "/api/jobs?limit=many",
        "/api/jobs?status=done",
    ] {
        let response = reqwest::get(format!("{}{bad}", marina.base_url))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{bad}");
        let answer: Value = response.json().await.unwrap();
        assert!(answer["error"].is_string(), "{bad}: {answer}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["backup", "nope", "--url", &marina.base_url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no instance `nope`"));
}
