//! Start-up on a crowded host: 2,000 labelled volumes and 500 labelled database containers
//! (created, not started; each mounts two of the volumes). Process start → `/readyz` 200
//! (`resync_2000_volumes_s`) and the process's peak resident memory over start-up and a full
//! `/api/targets` answer (`rss_2000_volumes_mb`).

use std::time::Duration;

use crate::daemon::{Marina, restic_instance};
use crate::support::{Engine, NewContainer, Stopwatch, Sweep, target_labels, unique};
use crate::{Figure, Report};

const SCENARIO: &str = "startup";
const VOLUMES: usize = 2000;
const CONTAINERS: usize = 500;
/// Instances the labelled objects are spread over.
const INSTANCES: usize = 10;

pub async fn run(engine: &Engine, report: &mut Report) {
    let sweep = Sweep::scenario(SCENARIO);
    let dir = tempfile::tempdir().expect("a scenario directory");

    let watch = Stopwatch::start();
    let volumes: Vec<String> = (0..VOLUMES).map(|_| unique("vol")).collect();
    engine
        .create_volumes(
            volumes
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let instance = format!("startup-{}", i % INSTANCES);
                    (name.clone(), target_labels(SCENARIO, &instance))
                })
                .collect(),
        )
        .await;
    let containers: Vec<NewContainer> = (0..CONTAINERS)
        .map(|i| {
            let mut labels = target_labels(SCENARIO, &format!("startup-{}", i % INSTANCES));
            labels.insert(crate::support::DB.to_owned(), "postgres".to_owned());
            NewContainer {
                name: unique("db"),
                labels,
                volumes: vec![volumes[2 * i].clone(), volumes[2 * i + 1].clone()],
            }
        })
        .collect();
    let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
    engine.create_containers(containers).await;
    report.detail(format!(
        "start-up: created {VOLUMES} volumes and {CONTAINERS} containers in {:.1} s",
        watch.elapsed().as_secs_f64()
    ));

    let config = (0..INSTANCES).fold(String::from("instances:\n"), |mut text, i| {
        let id = format!("startup-{i}");
        text.push_str(&restic_instance(&id, &dir.path().join(&id), "0 3 1 1 *"));
        text
    });
    let watch = Stopwatch::start();
    let marina = Marina::spawn(dir.path(), &config);
    marina.wait_ready(Duration::from_mins(1)).await;
    let ready = watch.elapsed().as_secs_f64();

    // Everything was listed: every labelled object is a target of its instance.
    let targets = marina.get("/api/targets").await;
    let count = targets["targets"].as_array().map_or(0, Vec::len);
    assert!(
        count >= VOLUMES + CONTAINERS,
        "only {count} targets listed after start-up"
    );
    let _ = marina.get("/api/instances").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory = marina.memory();
    report.detail(format!(
        "start-up: ready after {ready:.2} s with {count} targets; RSS {:.1} MiB now, peak {:.1} MiB",
        memory.rss_mb, memory.hwm_mb
    ));
    report.figure(Figure::Resync2000VolumesS, ready);
    report.figure(Figure::Rss2000VolumesMb, memory.hwm_mb);
    marina.stop();

    let watch = Stopwatch::start();
    engine.remove_containers(&names).await;
    engine.remove_volumes(&volumes).await;
    sweep.now();
    report.detail(format!(
        "start-up: removed them in {:.1} s",
        watch.elapsed().as_secs_f64()
    ));
}
