//! A long job log through the real `marina` binary: answered a page at a time, and read
//! completely, in order, by paging with `afterId`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use support::daemon::Daemon;
use support::require_engine_and_images;

/// Lines the hook prints; more than one page.
const LINES: usize = 2500;

#[tokio::test]
async fn a_long_job_log_comes_in_pages_and_paging_reads_every_line_once_in_order() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    let (volume, _volume) = support::plain_volume("echo data > /data/file");
    let (_app, _app_guard) = support::running_app(&format!("{volume}:/data"));
    // Every line the hook prints becomes a line of the job's log.
    let marina = Daemon::start(&format!(
        "instances:\n  - id: chatty\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: long-log}}\n    targets:\n      - volume: {volume}\n        preHook: 'i=0; while [ $$i -lt {LINES} ]; do echo hook-line-$$i; i=$$((i+1)); done'\n",
        repos.path().join("chatty").display()
    ));
    marina.wait_ready().await;
    let job = marina.trigger("chatty").await;
    let finished = marina.wait_job("chatty", job, 120).await;
    assert_eq!(finished["status"], "success", "{finished}");

    let first = marina.get(&format!("/api/logs/job/{job}")).await;
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 1000, "without a limit, one page of 1000 lines");
    let ids: Vec<i64> = first.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let all = marina.job_log_entries(job).await;
    let ids: Vec<i64> = all.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "every line once, in order"
    );
    assert_eq!(
        all[..1000],
        first[..],
        "the first page is where paging starts"
    );
    let hook: Vec<&str> = all
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains("hook-line-"))
        .collect();
    assert_eq!(hook.len(), LINES, "every printed line is in the log");
    for (i, message) in hook.iter().enumerate() {
        assert!(
            message.contains(&format!("hook-line-{i}"))
                && !message.contains(&format!("hook-line-{i}0")),
            "line {i} is in its place: {message}"
        );
    }
}
