//! Graceful shutdown of a real `marina run` (SPEC §5): SIGTERM lets a running job finish within
//! `shutdownGrace`; past the grace the job is aborted cleanly (containers started again,
//! staging and job containers removed, the job `aborted`); a second signal exits at once; and
//! a terminal's Ctrl-C reaches Marina, not the restic it runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use support::daemon::Daemon;
use support::{
    dir_entries, docker, filled_volume, require_engine_and_images, running_app, state_of,
};

const PASSWORD: &str = "shutdown-restic-password";

/// A backend that says it started, then works for `$WORK` seconds.
const BACKEND: &str = "#!/bin/sh\necho backend-is-working\nsleep \"$WORK\"\necho backend-done\n";
const BACKEND_DOCKERFILE: &str = "FROM marina-test/busybox:latest\nCOPY backup.sh /backup.sh\n";

/// A custom-image instance `id` whose backend works for `work` seconds.
fn backend_instance(id: &str, image: &str, work: u32, extra: &str) -> String {
    format!(
        "  - id: {id}\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{WORK: '{work}'}}\n{extra}"
    )
}

/// Starts a new Marina on `dir` (the same job store) and returns job `job` of `instance`.
async fn job_after_restart(
    dir: tempfile::TempDir,
    config: &str,
    instance: &str,
    job: i64,
) -> (Daemon, serde_json::Value) {
    let marina = Daemon::start_in(dir, config);
    marina.wait_ready().await;
    let jobs = marina.get(&format!("/api/status/{instance}")).await;
    let found = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == job)
        .unwrap_or_else(|| panic!("job {job} is not in {jobs}"))
        .clone();
    (marina, found)
}

#[tokio::test]
async fn sigterm_lets_a_running_job_finish_within_the_grace() {
    require_engine_and_images();
    let image = format!("marina-test/shutdown-finish:{}", std::process::id());
    let _image = support::build_image(&image, BACKEND_DOCKERFILE, &[("backup.sh", BACKEND)]);
    let (_volume, _guard) = filled_volume("finishing", "echo data > /data/file");
    let config = format!(
        "instances:\n{}shutdownGrace: 2m\n",
        backend_instance("finishing", &image, 4, "")
    );
    let mut marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("finishing").await;
    let job = marina.trigger("finishing").await;
    marina.wait_log_line(job, "backend-is-working").await;

    marina.signal("TERM");
    let status = marina
        .wait_exit(60)
        .expect("Marina exits once the job is done");
    assert!(status.success(), "a graceful shutdown exits 0: {status}");
    let (marina, job) = job_after_restart(marina.exited(), &config, "finishing", job).await;
    assert_eq!(job["status"], "success", "{job}");
    let log = marina.job_log(job["id"].as_i64().unwrap()).await;
    assert!(log.iter().any(|l| l.contains("backend-done")), "{log:#?}");
}

/// A helper image whose `sh` waits a long time before copying: staging that outlasts the grace.
const SLOW_SH: &str = "#!/bin/busybox sh\nsleep 300\nexec /bin/busybox sh \"$@\"\n";

#[tokio::test]
async fn past_the_grace_a_job_is_aborted_cleanly() {
    require_engine_and_images();
    let helper = format!("marina-test/shutdown-slow-helper:{}", std::process::id());
    let _helper = support::build_image(
        &helper,
        "FROM marina-test/busybox:latest\nRUN [\"/bin/busybox\", \"rm\", \"/bin/sh\"]\nCOPY sh /bin/sh\n",
        &[("sh", SLOW_SH)],
    );
    let image = format!("marina-test/shutdown-abort:{}", std::process::id());
    let _image = support::build_image(&image, BACKEND_DOCKERFILE, &[("backup.sh", BACKEND)]);
    let (volume, _guard) = filled_volume("aborting", "echo data > /data/file");
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let config = format!(
        "instances:\n{}shutdownGrace: 2s\nhelperImage: {helper}\n",
        backend_instance("aborting", &image, 1, "    stopAttached: true\n")
    );
    let mut marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("aborting").await;
    let job = marina.trigger("aborting").await;
    support::eventually(30, "the app stopped for staging", || {
        state_of(&app) == "exited"
    })
    .await;

    marina.signal("TERM");
    let status = marina
        .wait_exit(60)
        .expect("Marina exits once the grace is over");
    assert!(status.success(), "an orderly abort still exits 0: {status}");
    // Everything was put back by the shutdown itself, before any restart.
    assert_eq!(state_of(&app), "running", "the stopped app runs again");
    let dir = marina.exited();
    let staged = dir_entries(&dir.path().join("staging/aborting"));
    assert!(staged.is_empty(), "staging left behind: {staged:?}");
    let helpers = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("volume={volume}"),
        "--filter",
        "label=dev.polarfox.marina.role=helper",
    ]);
    assert_eq!(helpers.trim(), "", "the helper container was removed");
    let (_marina, job) = job_after_restart(dir, &config, "aborting", job).await;
    assert_eq!(job["status"], "aborted", "{job}");
    assert_eq!(
        job["message"], "Marina shut down before the job finished",
        "aborted by the shutdown, not found interrupted at the next start: {job}"
    );
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    require_engine_and_images();
    let image = format!("marina-test/shutdown-twice:{}", std::process::id());
    let _image = support::build_image(&image, BACKEND_DOCKERFILE, &[("backup.sh", BACKEND)]);
    let (_volume, _guard) = filled_volume("twice", "echo data > /data/file");
    let config = format!(
        "instances:\n{}shutdownGrace: 10m\n",
        backend_instance("twice", &image, 600, "")
    );
    let mut marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("twice").await;
    let job = marina.trigger("twice").await;
    marina.wait_log_line(job, "backend-is-working").await;

    marina.signal("TERM");
    assert!(
        marina.wait_exit(2).is_none(),
        "the first signal waits for the running job"
    );
    marina.signal("TERM");
    let status = marina
        .wait_exit(10)
        .expect("the second signal exits at once");
    assert_eq!(
        status.code(),
        Some(1),
        "a forced exit is a failure: {status}"
    );
    // The next start repairs what the forced exit left: the job is aborted, its container gone.
    let (_marina, job) = job_after_restart(marina.exited(), &config, "twice", job).await;
    assert_eq!(job["status"], "aborted", "{job}");
    let backend = docker(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("label=dev.polarfox.marina.job={}", job["id"]),
        "--filter",
        "label=dev.polarfox.marina.instance=twice",
    ]);
    assert_eq!(backend.trim(), "", "the backend container was removed");
}

/// restic that takes a moment before a backup starts, so the test can press Ctrl-C meanwhile.
const SLOW_RESTIC: &str = "#!/bin/sh\ncase \" $* \" in *\" backup \"*) echo slow-restic-waiting >&2; sleep 4;; esac\nexec restic \"$@\"\n";

#[tokio::test]
async fn ctrl_c_reaches_marina_not_restic_and_the_backup_completes() {
    require_engine_and_images();
    let tools = tempfile::tempdir().unwrap();
    let wrapper = tools.path().join("slow-restic");
    support::write_executable(&wrapper, SLOW_RESTIC);
    let repo = tools.path().join("repo");
    let (_volume, _guard) = filled_volume("ctrlc", "echo precious > /data/file");
    let config = format!(
        "instances:\n  - id: ctrlc\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\nresticBinary: {}\nshutdownGrace: 2m\n",
        repo.display(),
        wrapper.display()
    );
    let mut marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("ctrlc").await;
    let job = marina.trigger("ctrlc").await;
    // Marina's own log (DEBUG) says when it starts restic's backup command.
    let mut seen = false;
    for _ in 0..600 {
        if marina
            .logs
            .try_iter()
            .any(|l| l.contains("Running restic.") && l.contains("command=\"backup\""))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "restic backup did not start");

    marina.signal_group("INT");
    let status = marina.wait_exit(60).expect("Marina exits after the job");
    assert!(status.success(), "{status}");
    let snapshots = support::restore::snapshots(&repo, PASSWORD);
    assert_eq!(
        snapshots.len(),
        1,
        "the backup running at Ctrl-C completed: {snapshots:?}"
    );
    support::restore::assert_latest_holds(&repo, PASSWORD, "file", "precious\n");
    let (_marina, job) = job_after_restart(marina.exited(), &config, "ctrlc", job).await;
    assert_eq!(job["status"], "success", "{job}");
}
