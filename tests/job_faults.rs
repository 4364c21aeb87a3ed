//! Faults inside a job never wedge Marina, and Marinas sharing a host never undo each other's
//! work: a panic in a job (injected through the test-only `MARINA_FAULT` switch, feature
//! `fault-injection`) ends that job `failed` with the panic in its log, undoes what it did and
//! leaves the instance schedulable; start-up cleanup removes only this Marina's staging.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use support::daemon::Daemon;
use support::{
    BUSYBOX_IMAGE, dir_entries, docker, filled_volume, require_engine_and_images, running_app,
    state_of,
};

/// A custom backend that lists what it sees and succeeds.
const BACKEND: &str = "#!/bin/sh\nfind /backup | sort | sed 's/^/ENTRY /'\necho backend done\n";
const BACKEND_DOCKERFILE: &str = "FROM marina-test/busybox:latest\nCOPY backup.sh /backup.sh\n";

/// A panic in the middle of a job, at the fault point `fault`, with the app container stopped
/// (stopAttached) and the staging directory created: the job ends `failed` with the panic in
/// its log, the app runs again, staging and the job's containers are gone, and the next
/// trigger of the same instance is accepted and succeeds.
async fn a_panic_is_contained(fault: &str) {
    require_engine_and_images();
    let image = format!("marina-test/fault-backend-{fault}:{}", std::process::id());
    let _image = support::build_image(&image, BACKEND_DOCKERFILE, &[("backup.sh", BACKEND)]);
    // One instance per fault: tests run at once, and labelled volumes are seen by every daemon.
    let instance = format!("faulty-{fault}");
    let (volume, _volume) = filled_volume(&instance, "echo data > /data/file");
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let config = format!(
        "instances:\n  - id: {instance}\n    customImage: {image}\n    schedule: '0 3 * * *'\n    stopAttached: true\n"
    );
    let marina = Daemon::start_with_env(&config, &[("MARINA_FAULT", fault)]);
    marina.wait_ready().await;
    marina.wait_targets(&instance).await;

    let first = marina.trigger(&instance).await;
    let job = marina.wait_job(&instance, first, 60).await;
    let log = marina.job_log(first).await;
    assert_eq!(job["status"], "failed", "{job}\n{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("ERROR") && l.contains(&format!("fault injected at `{fault}`"))),
        "the panic message is in the job log: {log:#?}"
    );
    assert_eq!(state_of(&app), "running", "the stopped app runs again");
    let staged = dir_entries(&marina.dir().join("staging").join(&instance));
    assert!(staged.is_empty(), "staging left behind: {staged:?}");
    // Removed by the guard that owns it as the panic unwinds, a moment after the job ended.
    let (job_label, instance_label) = (
        format!("label=dev.polarfox.marina.job={first}"),
        format!("label=dev.polarfox.marina.instance={instance}"),
    );
    support::eventually(10, "the job's backend container removed", || {
        docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &job_label,
            "--filter",
            &instance_label,
        ])
        .trim()
        .is_empty()
    })
    .await;

    // The instance is not wedged: the next run is accepted and (the fault fires once) works.
    let second = marina.trigger(&instance).await;
    let job = marina.wait_job(&instance, second, 60).await;
    assert_eq!(
        job["status"],
        "success",
        "{job}\n{:#?}",
        marina.job_log(second).await
    );
    assert_eq!(state_of(&app), "running");
}

#[tokio::test]
async fn a_panic_after_stopping_containers_fails_the_job_and_undoes_it() {
    a_panic_is_contained("after-stop").await;
}

#[tokio::test]
async fn a_panic_while_the_backend_container_runs_fails_the_job_and_removes_it() {
    a_panic_is_contained("backend-output").await;
}

/// Outside the job's body, where its own undo list is lost: the journal says what to put back.
#[tokio::test]
async fn a_panic_before_the_undo_work_is_repaired_from_the_journal() {
    a_panic_is_contained("before-undo").await;
}

/// Another Marina on the same host (another job store, the same staging directory) has a job
/// in flight: this Marina's start-up cleanup leaves its staging alone, while it still removes
/// what its own journal says it left behind.
#[tokio::test]
async fn start_up_cleanup_removes_only_this_marinas_staging() {
    require_engine_and_images();
    let shared = tempfile::tempdir().unwrap();
    let staging = shared.path().join("staging");
    let theirs = [
        staging.join("nightly/20270101T000000Z/vol/data"),
        staging.join("nightly/restic/vol/data"),
        staging.join("other/20270102T030405Z/dbs/pg"),
    ];
    for dir in &theirs {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("in-flight"), "another Marina is writing this").unwrap();
    }
    let config = format!(
        "instances:\n  - id: nightly\n    customImage: {BUSYBOX_IMAGE}\n    schedule: '0 3 * * *'\nstagingDir: {}\n",
        staging.display()
    );

    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    // Recovery runs before readiness; give a wrongly eager sweep every chance anyway.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for dir in &theirs {
        assert!(
            dir.join("in-flight").exists(),
            "{} belongs to another Marina and was removed",
            dir.display()
        );
    }
    drop(marina);
}

/// A crash leaves this Marina's own staging behind; its next start removes exactly that, from
/// its journal, and nothing else.
#[tokio::test]
async fn a_crashed_jobs_own_staging_is_removed_at_the_next_start() {
    require_engine_and_images();
    // A backend that hangs, so the crash comes while the run directory exists.
    let image = format!("marina-test/hanging-backend:{}", std::process::id());
    let _image = support::build_image(
        &image,
        BACKEND_DOCKERFILE,
        &[(
            "backup.sh",
            "#!/bin/sh\necho backend-is-running\nsleep 600\n",
        )],
    );
    let (_volume, _guard) = filled_volume("crashy", "echo data > /data/file");
    let config = format!(
        "instances:\n  - id: crashy\n    customImage: {image}\n    schedule: '0 3 * * *'\n"
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina.wait_targets("crashy").await;
    let job = marina.trigger("crashy").await;
    marina.wait_log_line(job, "backend-is-running").await;
    let dir = marina.crash();
    let staging = dir.path().join("staging/crashy");
    let runs = dir_entries(&staging);
    assert_eq!(runs.len(), 1, "the crash left the run directory: {runs:?}");
    // Another Marina's run of the same instance, in flight in the same staging directory.
    let theirs = staging.join("20270101T000000Z");
    std::fs::create_dir_all(&theirs).unwrap();

    let marina = Daemon::start_in(dir, &config);
    marina.wait_ready().await;
    assert_eq!(
        dir_entries(&marina.dir().join("staging/crashy")),
        ["20270101T000000Z"],
        "only the crashed job's own run directory is removed"
    );
    let jobs = marina.get("/api/status/crashy").await;
    assert_eq!(jobs[0]["status"], "aborted", "{jobs}");
}
