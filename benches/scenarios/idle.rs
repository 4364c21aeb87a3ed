//! Memory at rest: 10 instances with 5 labelled volumes each (50 targets), 60 s after the
//! daemon became ready, with nothing happening (`idle_rss_mb`).

use std::time::Duration;

use crate::daemon::{Marina, restic_instance};
use crate::support::{Engine, Sweep, target_labels, unique};
use crate::{Figure, Report};

const SCENARIO: &str = "idle";
const INSTANCES: usize = 10;
const TARGETS_PER_INSTANCE: usize = 5;
const IDLE: Duration = Duration::from_mins(1);

pub async fn run(engine: &Engine, report: &mut Report) {
    let _sweep = Sweep::scenario(SCENARIO);
    let dir = tempfile::tempdir().expect("a scenario directory");
    let mut volumes = Vec::new();
    for i in 0..INSTANCES {
        for _ in 0..TARGETS_PER_INSTANCE {
            volumes.push((
                unique("idle"),
                target_labels(SCENARIO, &format!("idle-{i}")),
            ));
        }
    }
    engine.create_volumes(volumes).await;
    let config = (0..INSTANCES).fold(String::from("instances:\n"), |mut text, i| {
        let id = format!("idle-{i}");
        text.push_str(&restic_instance(&id, &dir.path().join(&id), "0 3 1 1 *"));
        text
    });
    let marina = Marina::spawn(dir.path(), &config);
    marina.wait_ready(Duration::from_secs(30)).await;
    // Other objects on the engine may show up as unassigned targets; count ours.
    let targets = marina.get("/api/targets").await;
    let count = targets["targets"].as_array().map_or(0, |all| {
        all.iter()
            .filter(|t| t["instances"].as_array().is_some_and(|i| !i.is_empty()))
            .count()
    });
    assert_eq!(
        count,
        INSTANCES * TARGETS_PER_INSTANCE,
        "targets: {targets}"
    );
    tokio::time::sleep(IDLE).await;
    let memory = marina.memory();
    report.detail(format!(
        "idle: {count} targets in {INSTANCES} instances; after {} s RSS {:.1} MiB (peak {:.1} MiB)",
        IDLE.as_secs(),
        memory.rss_mb,
        memory.hwm_mb
    ));
    report.figure(Figure::IdleRssMb, memory.rss_mb);
    marina.stop();
}
