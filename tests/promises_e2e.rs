//! Promises of the backup path, each proven through a real job of a real `marina run` against
//! the real engine and a real restic repository: hooks (SPEC §3.3), the empty-volume check and
//! `allowEmpty` (§3.5), and `stopAttached` giving the container back before the job ends (§3.2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::daemon::Daemon;
use support::{docker, filled_volume, plain_volume, require_engine_and_images, running_app};

const PASSWORD: &str = "promises-restic-password";

fn restic_instance(id: &str, repo: &Path, targets: &str) -> String {
    format!(
        "instances:\n  - id: {id}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n    targets:\n{targets}",
        repo.display()
    )
}

/// The job's log lines as JSON entries (level, message, targetId, timestamp), oldest first.
async fn log_entries(marina: &Daemon, job: i64) -> Vec<Value> {
    marina
        .get(&format!("/api/logs/job/{job}"))
        .await
        .as_array()
        .cloned()
        .unwrap()
}

/// The log lines of `target` as `LEVEL message`.
fn lines_of(entries: &[Value], target: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["targetId"] == target)
        .map(|e| {
            format!(
                "{} {}",
                e["level"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn hooks_log_their_output_a_failing_pre_hook_fails_the_target_and_post_hooks_always_run() {
    require_engine_and_images();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let (plain, _g1) = plain_volume("echo plain > /data/file");
    let (refused, _g2) = plain_volume("echo refused > /data/file");
    let (warned, _g3) = plain_volume("echo warned > /data/file");
    let (broken, _g4) = plain_volume("echo broken > /data/file");
    let _mounters: Vec<_> = [&plain, &refused, &warned, &broken]
        .iter()
        .map(|v| running_app(&format!("{v}:/data")))
        .collect();
    let targets = format!(
        "      - volume: {plain}\n        preHook: 'echo pre-output-of-plain; echo pre-stderr >&2'\n        postHook: 'echo post-output-of-plain'\n\
         \x20     - volume: {refused}\n        preHook: 'echo refusing; exit 7'\n        postHook: 'echo post-after-refused-pre'\n\
         \x20     - volume: {warned}\n        postHook: 'echo post-failing; exit 5'\n\
         \x20     - volume: {broken}\n        paths: [no-such-dir]\n        postHook: 'echo post-after-failed-staging'\n"
    );
    let marina = Daemon::start(&restic_instance("hooked", &repo, &targets));
    marina.wait_ready().await;
    let job = marina.trigger("hooked").await;
    let done = marina.wait_job("hooked", job, 180).await;
    let entries = log_entries(&marina, job).await;
    assert_eq!(done["status"], "partial_success", "{done}\n{entries:#?}");
    assert_eq!(done["lastTargetsSuccessful"], 2, "{done}");

    let plain_log = lines_of(&entries, &format!("volume:{plain}"));
    for expected in [
        "INFO pre-output-of-plain",
        "INFO pre-stderr",
        "INFO post-output-of-plain",
    ] {
        assert!(
            plain_log.iter().any(|l| l == expected),
            "{expected}: {plain_log:#?}"
        );
    }
    let refused_log = lines_of(&entries, &format!("volume:{refused}"));
    assert!(
        refused_log.iter().any(|l| l.starts_with("ERROR")
            && l.contains("pre-hook")
            && l.contains("exited with code 7")),
        "a failing pre-hook fails the target: {refused_log:#?}"
    );
    assert!(
        refused_log
            .iter()
            .any(|l| l == "INFO post-after-refused-pre"),
        "the post-hook runs after a failed pre-hook: {refused_log:#?}"
    );
    let warned_log = lines_of(&entries, &format!("volume:{warned}"));
    assert!(
        warned_log.iter().any(|l| l.starts_with("WARN")
            && l.contains("post-hook")
            && l.contains("exited with code 5")),
        "a failing post-hook is a warning: {warned_log:#?}"
    );
    assert!(
        !warned_log.iter().any(|l| l.starts_with("ERROR")),
        "and the target still succeeds: {warned_log:#?}"
    );
    let broken_log = lines_of(&entries, &format!("volume:{broken}"));
    assert!(
        broken_log.iter().any(|l| l.starts_with("ERROR")),
        "{broken_log:#?}"
    );
    assert!(
        broken_log
            .iter()
            .any(|l| l == "INFO post-after-failed-staging"),
        "the post-hook runs after failed staging: {broken_log:#?}"
    );

    // What made it is restorable; what was refused is not in the repository.
    let snapshots = support::restore::snapshots(&repo, PASSWORD);
    let tags: Vec<String> = snapshots.iter().map(|s| s["tags"].to_string()).collect();
    assert_eq!(snapshots.len(), 2, "{tags:?}");
    assert!(tags.iter().any(|t| t.contains(&format!("volume:{plain}"))));
    assert!(tags.iter().any(|t| t.contains(&format!("volume:{warned}"))));
}

#[tokio::test]
async fn an_empty_volume_fails_unless_allow_empty_says_it_may_be() {
    require_engine_and_images();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    // Empty files and directories are no content.
    let (empty, _g1) = plain_volume("mkdir -p /data/dir && : > /data/dir/empty");
    let (allowed, _g2) = plain_volume("true");
    let targets =
        format!("      - volume: {empty}\n      - volume: {allowed}\n        allowEmpty: true\n");
    let marina = Daemon::start(&restic_instance("empties", &repo, &targets));
    marina.wait_ready().await;
    let job = marina.trigger("empties").await;
    let done = marina.wait_job("empties", job, 180).await;
    let entries = log_entries(&marina, job).await;
    assert_eq!(done["status"], "partial_success", "{done}\n{entries:#?}");
    let empty_log = lines_of(&entries, &format!("volume:{empty}"));
    assert!(
        empty_log.iter().any(|l| l.starts_with("ERROR")
            && l.contains(&format!("no data staged for volume:{empty}"))
            && l.contains("is the volume empty?")),
        "{empty_log:#?}"
    );
    let snapshots = support::restore::snapshots(&repo, PASSWORD);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert!(
        snapshots[0]["tags"]
            .to_string()
            .contains(&format!("volume:{allowed}")),
        "the allowed empty volume has its snapshot: {snapshots:?}"
    );
}

fn started_at(container: &str) -> DateTime<Utc> {
    let text = docker(&["inspect", "--format", "{{.State.StartedAt}}", container]);
    DateTime::parse_from_rfc3339(text.trim())
        .unwrap_or_else(|e| panic!("StartedAt {text}: {e}"))
        .to_utc()
}

fn time_of(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap()
        .to_utc()
}

/// Runs a job of `instance` with `app` attached to its volume under `stopAttached`, and proves
/// that `app` was stopped and started again while the job ran, before it ended. Returns the
/// job's log entries and the time `app` started again.
async fn app_runs_again_before_the_job_ends(
    marina: &Daemon,
    instance: &str,
    app: &str,
) -> (Vec<Value>, DateTime<Utc>) {
    let before = started_at(app);
    let job = marina.trigger(instance).await;
    let done = marina.wait_job(instance, job, 180).await;
    let entries = log_entries(marina, job).await;
    assert_eq!(done["status"], "success", "{done}\n{entries:#?}");
    let restarted = started_at(app);
    assert!(restarted > before, "{app} was stopped and started again");
    assert!(
        restarted > time_of(&done["lastStartedAt"]),
        "restarted during the job: {restarted} vs {done}"
    );
    assert!(
        restarted < time_of(&done["lastCompletedAt"]),
        "{app} ran again before the job ended: {restarted} vs {done}"
    );
    (entries, restarted)
}

#[tokio::test]
async fn stop_attached_gives_the_container_back_before_the_job_ends() {
    require_engine_and_images();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let backend = format!("marina-test/promises-backend:{}", std::process::id());
    let _backend = support::build_image(
        &backend,
        "FROM marina-test/busybox:latest\nCOPY backup.sh /backup.sh\n",
        &[(
            "backup.sh",
            "#!/bin/sh\necho backend-starts\nsleep 2\necho backend-ends\n",
        )],
    );
    let (in_place, _g1) = filled_volume("attached-restic", "echo restic > /data/file");
    let (copied, _g2) = filled_volume("attached-image", "echo image > /data/file");
    let (restic_app, _restic_app) = running_app(&format!("{in_place}:/data"));
    let (image_app, _image_app) = running_app(&format!("{copied}:/data"));
    let config = format!(
        "instances:\n  - id: attached-restic\n    repository: {}\n    schedule: '0 3 * * *'\n    stopAttached: true\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n  - id: attached-image\n    customImage: {backend}\n    schedule: '0 3 * * *'\n    stopAttached: true\n",
        repo.display()
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    for instance in ["attached-restic", "attached-image"] {
        marina.wait_targets(instance).await;
    }

    // restic reads the volume in place: the app waits for restic, not for the job's end.
    app_runs_again_before_the_job_ends(&marina, "attached-restic", &restic_app).await;
    support::restore::assert_latest_holds(&repo, PASSWORD, "file", "restic\n");

    // A custom image: the app runs again as soon as its volume is staged, before the image.
    let (entries, restarted) =
        app_runs_again_before_the_job_ends(&marina, "attached-image", &image_app).await;
    let backend_started = entries
        .iter()
        .find(|e| e["message"] == "backend-starts")
        .unwrap_or_else(|| panic!("the backend ran: {entries:#?}"));
    assert!(
        restarted < time_of(&backend_started["timestamp"]),
        "the app ran again before the backend started: {restarted} vs {backend_started}"
    );
}
