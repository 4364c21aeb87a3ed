//! "Back up now" against the real `marina` binary and engine: concurrent requests for one
//! instance give exactly one job.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use support::daemon::Daemon;
use support::require_engine_and_images;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_run_now_requests_give_exactly_one_job() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    let (volume, _volume) = support::plain_volume("echo data > /data/file");
    // The hook runs in a container that mounts the volume; it keeps the job busy for a few
    // seconds, so later requests find it queued or running.
    let (_app, _app_guard) = support::running_app(&format!("{volume}:/data"));
    let marina = Daemon::start(&format!(
        "instances:\n  - id: busy\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: run-now}}\n    targets:\n      - volume: {volume}\n        preHook: 'sleep 3'\n",
        repos.path().join("busy").display()
    ));
    marina.wait_ready().await;

    // Open ten connections first, so the ten requests below arrive together rather than
    // one connection handshake apart.
    futures::future::join_all((0..10).map(|_| marina.get("/api/instances/busy"))).await;
    let requests = (0..10).map(|_| marina.post("/api/instances/busy/backup"));
    let answers = futures::future::join_all(requests).await;
    let accepted: Vec<i64> = answers
        .iter()
        .filter(|(status, _)| *status == 202)
        .map(|(_, answer)| answer["jobId"].as_i64().expect("jobId"))
        .collect();
    let refused = answers.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!(
        (accepted.len(), refused),
        (1, 9),
        "exactly one request wins: {answers:?}"
    );
    for (status, answer) in answers.iter().filter(|(status, _)| *status == 409) {
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("already running") || message.contains("already queued"),
            "{status}: {answer}"
        );
    }

    let job = marina.wait_job("busy", accepted[0], 120).await;
    assert_eq!(job["status"], "success", "{job}");
    let jobs = marina.get("/api/status/busy").await;
    let jobs = jobs.as_array().unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "the refused requests left no job records: {jobs:?}"
    );

    // Once it finished, the next request wins again.
    let (status, answer) = marina.post("/api/instances/busy/backup").await;
    assert_eq!(status, 202, "{answer}");
}
