//! A real `marina run` that stops and starts again: a run missed while Marina was down is
//! caught up once (also for an instance that never succeeded), and a `kill -9` in the middle of
//! a backup — during `restic backup`, or while a custom backend container runs — is repaired
//! at the next start: the job `aborted`, stopped containers running, the backend container and
//! staging gone, no restic lock in the way, and the next backup succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::Path;

use serde_json::Value;
use support::daemon::Daemon;
use support::{
    dir_entries, docker, filled_volume, require_engine_and_images, running_app, state_of,
};

const PASSWORD: &str = "restart-restic-password";

fn restic_instance(id: &str, repo: &Path, extra: &str) -> String {
    format!(
        "  - id: {id}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n{extra}",
        repo.display()
    )
}

/// Moves every job of `dir`'s job store two days into the past, as if Marina had been down
/// since then.
fn age_the_job_store(dir: &Path) {
    let db = rusqlite::Connection::open(dir.join("marina.db")).unwrap();
    let two_days_ms: i64 = 2 * 24 * 3600 * 1000;
    db.execute(
        "UPDATE jobs SET created_at = created_at - ?1, started_at = started_at - ?1,
             completed_at = completed_at - ?1, updated_at = updated_at - ?1",
        [two_days_ms],
    )
    .unwrap();
}

fn jobs_of(answer: &Value) -> Vec<Value> {
    answer.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_run_missed_while_marina_was_down_is_caught_up_once() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("repo");
    // A "repository" that is a plain file: every backup of `neverok` fails.
    let broken = repos.path().join("not-a-repository");
    std::fs::write(&broken, "a file, not a directory").unwrap();
    let (_ok_volume, _g1) = filled_volume("caught", "echo caught > /data/file");
    let (_bad_volume, _g2) = filled_volume("neverok", "echo never > /data/file");
    let (_new_volume, _g3) = filled_volume("fresh", "echo fresh > /data/file");
    let config = format!(
        "instances:\n{}{}{}",
        restic_instance("caught", &repo, ""),
        restic_instance("neverok", &broken, ""),
        restic_instance("fresh", &repo, ""),
    );

    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    for instance in ["caught", "neverok"] {
        marina.wait_targets(instance).await;
        let job = marina.trigger(instance).await;
        marina.wait_job(instance, job, 120).await;
    }
    assert_eq!(
        marina.get("/api/status/caught").await[0]["status"],
        "success"
    );
    assert_eq!(
        marina.get("/api/status/neverok").await[0]["status"],
        "failed"
    );
    let first_snapshot = support::restore::snapshots(&repo, PASSWORD)[0]["id"].clone();
    marina.signal("TERM");
    let mut marina = marina;
    assert!(marina.wait_exit(30).is_some_and(|s| s.success()));
    let dir = marina.exited();
    age_the_job_store(dir.path());

    let marina = Daemon::start_in(dir, &config);
    marina.wait_ready().await;
    for instance in ["caught", "neverok"] {
        let jobs = marina
            .wait_for(
                &format!("/api/status/{instance}"),
                120,
                "a finished catch-up run",
                |jobs| {
                    jobs_of(jobs)
                        .iter()
                        .any(|j| j["trigger"] == "catchUp" && j["isActive"] == false)
                },
            )
            .await;
        let catch_ups = jobs_of(&jobs)
            .into_iter()
            .filter(|j| j["trigger"] == "catchUp")
            .count();
        assert_eq!(catch_ups, 1, "one catch-up run for {instance}: {jobs}");
    }
    let caught = jobs_of(&marina.get("/api/status/caught").await);
    assert_eq!(caught[0]["trigger"], "catchUp");
    assert_eq!(caught[0]["status"], "success", "{caught:?}");
    // Retention keeps one snapshot a day, so the catch-up's replaced the first one.
    let snapshots = support::restore::snapshots(&repo, PASSWORD);
    assert_ne!(
        snapshots.last().unwrap()["id"],
        first_snapshot,
        "the catch-up run backed up: {snapshots:?}"
    );
    support::restore::assert_latest_holds(&repo, PASSWORD, "file", "caught\n");
    // A new instance waits for its first scheduled time.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        jobs_of(&marina.get("/api/status/fresh").await),
        Vec::<Value>::new(),
        "no catch-up for an instance that never ran"
    );
}

/// restic that backs up slowly (`--limit-upload`), so Marina can be killed in the middle.
const SLOW_RESTIC: &str = "#!/bin/sh\ncase \" $* \" in *\" backup \"*) exec restic --limit-upload 200 \"$@\";; esac\nexec restic \"$@\"\n";

#[tokio::test]
async fn kill_9_during_restic_backup_is_repaired_at_the_next_start() {
    require_engine_and_images();
    let tools = tempfile::tempdir().unwrap();
    let wrapper = tools.path().join("slow-restic");
    support::write_executable(&wrapper, SLOW_RESTIC);
    let repo = tools.path().join("repo");
    // 8 MiB at 200 KiB/s: restic is busy for about 40 s.
    let (volume, _guard) = filled_volume(
        "killed",
        "head -c 8388608 /dev/urandom > /data/big && echo marker > /data/marker",
    );
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let slow = format!(
        "instances:\n{}resticBinary: {}\n",
        restic_instance("killed", &repo, "    stopAttached: true\n"),
        wrapper.display()
    );
    let marina = Daemon::start(&slow);
    marina.wait_ready().await;
    marina.wait_targets("killed").await;
    let job = marina.trigger("killed").await;
    // In place (a host binary reads the volume directly): the app stays stopped while restic
    // reads, so a stopped app means restic's backup is under way.
    support::eventually(60, "the app stopped for the backup", || {
        state_of(&app) == "exited"
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(state_of(&app), "exited", "restic is still reading");

    let dir = marina.crash();
    // The orphaned restic dies on its next write to Marina's closed pipe, leaving its lock.
    let fast = format!(
        "instances:\n{}",
        restic_instance("killed", &repo, "    stopAttached: true\n")
    );
    let marina = Daemon::start_in(dir, &fast);
    marina.wait_ready().await;
    support::eventually(20, "the app running again", || state_of(&app) == "running").await;
    let jobs = jobs_of(&marina.get("/api/status/killed").await);
    let killed = jobs.iter().find(|j| j["id"] == job).unwrap();
    assert_eq!(killed["status"], "aborted", "{killed}");

    let next = marina.trigger("killed").await;
    let done = marina.wait_job("killed", next, 180).await;
    assert_eq!(
        done["status"],
        "success",
        "no lock left by the killed restic blocks the next backup: {done}\n{:#?}",
        marina.job_log(next).await
    );
    support::restore::assert_latest_holds(&repo, PASSWORD, "marker", "marker\n");
    assert_eq!(state_of(&app), "running");
}

/// A backend that hangs while `$MODE` is `hang`, and lists what it got otherwise.
const BACKEND: &str = "#!/bin/sh\nif [ \"$MODE\" = hang ]; then echo backend-is-running; sleep 600; fi\nfind /backup -type f | sed 's/^/FILE /'\n";

#[tokio::test]
async fn kill_9_while_a_backend_container_runs_is_repaired_at_the_next_start() {
    require_engine_and_images();
    let image = format!("marina-test/restart-backend:{}", std::process::id());
    let _image = support::build_image(
        &image,
        "FROM marina-test/busybox:latest\nCOPY backup.sh /backup.sh\n",
        &[("backup.sh", BACKEND)],
    );
    let (_volume, _guard) = filled_volume("hung", "echo data > /data/file");
    let config = |mode: &str| {
        format!(
            "instances:\n  - id: hung\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{MODE: {mode}}}\n"
        )
    };
    let marina = Daemon::start(&config("hang"));
    marina.wait_ready().await;
    marina.wait_targets("hung").await;
    let job = marina.trigger("hung").await;
    marina.wait_log_line(job, "backend-is-running").await;
    let dir = marina.crash();
    let backend_label = format!("label=dev.polarfox.marina.job={job}");
    let instance_label = "label=dev.polarfox.marina.instance=hung";
    let running = docker(&[
        "ps",
        "--quiet",
        "--filter",
        &backend_label,
        "--filter",
        instance_label,
    ]);
    assert_ne!(running.trim(), "", "the backend outlived Marina");

    let marina = Daemon::start_in(dir, &config("ok"));
    marina.wait_ready().await;
    let left = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &backend_label,
        "--filter",
        instance_label,
    ]);
    assert_eq!(
        left.trim(),
        "",
        "the backend container was removed at start-up"
    );
    assert!(
        dir_entries(&marina.dir().join("staging/hung")).is_empty(),
        "the crashed run's staging was removed"
    );
    let jobs = jobs_of(&marina.get("/api/status/hung").await);
    assert_eq!(
        jobs.iter().find(|j| j["id"] == job).unwrap()["status"],
        "aborted"
    );

    let next = marina.trigger("hung").await;
    let done = marina.wait_job("hung", next, 60).await;
    let log = marina.job_log(next).await;
    assert_eq!(done["status"], "success", "{done}\n{log:#?}");
    assert!(log.iter().any(|l| l.contains("FILE /backup/")), "{log:#?}");
}
