//! How fast changes become visible: a labelled volume created → its target in `/api/targets`
//! (`event_to_api_p99_ms`), and a config replaced by rename → its new schedule in
//! `/api/schedules` (`config_reload_ms`). One Marina serves both.

use std::time::Duration;

use crate::daemon::{Marina, restic_instance};
use crate::support::{Engine, Stopwatch, Sweep, median, ms, percentile, target_labels, unique};
use crate::{Figure, Report};

const SCENARIO: &str = "events";
/// Volumes created one after another.
const VOLUMES: usize = 200;
/// Config replacements.
const RELOADS: usize = 20;
/// Pause between two polls of the API while waiting for a change.
const POLL: Duration = Duration::from_millis(1);

pub async fn run(engine: &Engine, report: &mut Report) {
    let _sweep = Sweep::scenario(SCENARIO);
    let dir = tempfile::tempdir().expect("a scenario directory");
    let repository = dir.path().join("repo");
    let config = |schedule: &str| {
        format!(
            "instances:\n{}",
            restic_instance("events", &repository, schedule)
        )
    };
    let marina = Marina::spawn(dir.path(), &config("0 3 1 1 *"));
    marina.wait_ready(Duration::from_secs(30)).await;

    // One volume first, unmeasured: connections and caches warm up as in a long-running
    // daemon.
    let warm = unique("warm");
    engine
        .create_volume(&warm, target_labels(SCENARIO, "events"))
        .await;
    wait_for_target(&marina, &warm).await;

    let mut latencies = Vec::with_capacity(VOLUMES);
    for _ in 0..VOLUMES {
        let name = unique("ev");
        engine
            .create_volume(&name, target_labels(SCENARIO, "events"))
            .await;
        let watch = Stopwatch::start();
        wait_for_target(&marina, &name).await;
        latencies.push(ms(watch.elapsed()));
    }
    let p99 = percentile(&latencies, 99.0);
    report.detail(format!(
        "event → API over {VOLUMES} volumes: median {:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        median(&latencies),
        percentile(&latencies, 100.0)
    ));
    report.figure(Figure::EventToApiP99Ms, p99);

    let mut reloads = Vec::with_capacity(RELOADS);
    for i in 0..RELOADS {
        let schedule = format!("{i} 4 * * *");
        marina.replace_config(&config(&schedule));
        let watch = Stopwatch::start();
        loop {
            let schedules = marina.get("/api/schedules").await;
            let current = schedules
                .as_array()
                .and_then(|all| all.iter().find(|s| s["instanceId"] == "events"))
                .and_then(|s| s["scheduleCron"].as_str().map(str::to_owned));
            if current.as_deref() == Some(schedule.as_str()) {
                break;
            }
            assert!(
                watch.elapsed() < Duration::from_secs(30),
                "schedule {schedule} never showed; log tail:\n{}",
                marina.log_tail(30)
            );
            tokio::time::sleep(POLL).await;
        }
        reloads.push(ms(watch.elapsed()));
        // Let the watcher's debounce window close, so the next rename is a change of its own.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let reload = median(&reloads);
    report.detail(format!(
        "config reload over {RELOADS} renames: median {reload:.0} ms, min {:.0} ms, max {:.0} ms",
        percentile(&reloads, 0.1),
        percentile(&reloads, 100.0)
    ));
    report.figure(Figure::ConfigReloadMs, reload);
    marina.stop();
}

/// Polls `/api/targets` until `volume` is listed.
async fn wait_for_target(marina: &Marina, volume: &str) {
    let id = format!("volume:{volume}");
    let watch = Stopwatch::start();
    loop {
        let answer = marina.get("/api/targets").await;
        let found = answer["targets"]
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["id"] == id.as_str()));
        if found {
            return;
        }
        assert!(
            watch.elapsed() < Duration::from_secs(30),
            "{id} never showed in /api/targets; log tail:\n{}",
            marina.log_tail(30)
        );
        tokio::time::sleep(POLL).await;
    }
}
