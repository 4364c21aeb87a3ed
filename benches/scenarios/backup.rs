//! Backups to a local restic repository, side by side with bare restic on the same files:
//! a labelled volume of 10,000 files and about 1 GB of seeded pseudo-random data, read in
//! place by both (Marina runs on the host, so it backs up the volume's directory).
//!
//! - `backup_overhead_ratio`: Marina's first backup of the volume (job `lastStartedAt` →
//!   `lastCompletedAt`, which includes applying the retention) ÷ `restic backup` of the same
//!   directory into a fresh repository. Every repository, Marina's too, is initialised with
//!   `restic init` before anything is timed, so neither side pays for `init`.
//! - `incremental_ratio`: Marina's second backup of the unchanged volume ÷ its first.
//!
//! Seven rounds, each with fresh repositories (Marina's are those of seven instances that the
//! volume's label names), bare restic first in even rounds and Marina first in odd ones; each
//! figure is the median of the rounds' ratios (the runs of a round are next to each other
//! and see the same load of a shared, noisy machine). Bare restic's own
//! second backup of the unchanged directory is timed too, as a reference for the incremental
//! ratio.

use std::time::Duration;

use crate::daemon::{Marina, restic, restic_instance};
use crate::support::{Engine, Stopwatch, Sweep, fill_dir, median, target_labels, unique};
use crate::{Figure, Report};

const SCENARIO: &str = "backup";
const ROUNDS: usize = 7;
const FILES: usize = 10_000;
const FILES_PER_DIR: usize = 100;
/// File sizes: 100 kB on average, so 10,000 files make about 1 GB.
const SIZES: std::ops::Range<usize> = 50_000..150_001;
const SEED: u64 = 0x6d61_7269_6e61;
const JOB_LIMIT: Duration = Duration::from_mins(10);
/// Where a restic job's log marks the end of its steps: the backup, then the retention.
const BACKUP_STEPS: &[&str] = &["Target backed up", "Retention applied"];

pub async fn run(engine: &Engine, report: &mut Report) {
    let _sweep = Sweep::scenario(SCENARIO);
    let dir = tempfile::tempdir().expect("a scenario directory");
    let instances: Vec<String> = (0..ROUNDS).map(|i| format!("backup-{i}")).collect();
    let mountpoint = labelled_data(engine, &instances, report).await;

    let mut config = String::from("instances:\n");
    for instance in &instances {
        let repo = dir.path().join(instance);
        restic(&repo, &["init"]);
        config.push_str(&restic_instance(instance, &repo, "0 3 1 1 *"));
    }
    let marina = Marina::spawn(dir.path(), &config);
    marina.wait_ready(Duration::from_secs(30)).await;

    let path = mountpoint.to_string_lossy().into_owned();
    let mut bare = Vec::with_capacity(ROUNDS);
    let mut bare_again = Vec::with_capacity(ROUNDS);
    let mut first = Vec::with_capacity(ROUNDS);
    let mut steps = Vec::with_capacity(2 * ROUNDS);
    for (round, instance) in instances.iter().enumerate() {
        // Bare restic: a fresh, initialised repository and its own cache; only `restic
        // backup` is timed.
        let repo = dir.path().join(format!("bare-{round}"));
        let cache = dir.path().join(format!("bare-cache-{round}"));
        let cache = cache.to_string_lossy().into_owned();
        restic(&repo, &["init"]);
        let backup = [
            "--cache-dir",
            &cache,
            "backup",
            "--host",
            "bench-node",
            &path,
        ];
        let marina_first = round % 2 == 1;
        if marina_first {
            let (id, job) = marina.backup(instance, JOB_LIMIT).await;
            first.push(job.as_secs_f64());
            steps.push(marina.job_steps(id, BACKUP_STEPS).await);
        }
        let watch = Stopwatch::start();
        restic(&repo, &backup);
        bare.push(watch.elapsed().as_secs_f64());
        let watch = Stopwatch::start();
        restic(&repo, &backup);
        bare_again.push(watch.elapsed().as_secs_f64());
        if !marina_first {
            let (id, job) = marina.backup(instance, JOB_LIMIT).await;
            first.push(job.as_secs_f64());
            steps.push(marina.job_steps(id, BACKUP_STEPS).await);
        }
    }
    let mut second = Vec::with_capacity(ROUNDS);
    for instance in &instances {
        let (id, job) = marina.backup(instance, JOB_LIMIT).await;
        second.push(job.as_secs_f64());
        steps.push(marina.job_steps(id, BACKUP_STEPS).await);
    }
    marina.stop();

    for instance in &instances {
        assert_incremental(&dir.path().join(instance), instance);
    }

    let list = |values: &[f64]| {
        values
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.detail(format!(
        "backup: bare restic {} s (again, unchanged: {} s); Marina first {} s, second {} s",
        list(&bare),
        list(&bare_again),
        list(&first),
        list(&second)
    ));
    report.detail(format!(
        "backup: inside Marina's jobs (first, then second backups), restic backup + retention + the rest: {}",
        steps.join("; ")
    ));
    report.detail(format!(
        "backup: bare restic's own second ÷ first backup: {:.3}",
        median(&ratios(&bare_again, &bare))
    ));
    let list3 = |values: &[f64]| {
        values
            .iter()
            .map(|v| format!("{v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let overhead = ratios(&first, &bare);
    let incremental = ratios(&second, &first);
    report.detail(format!(
        "backup: per round, Marina ÷ bare {}; second ÷ first {}",
        list3(&overhead),
        list3(&incremental)
    ));
    report.figure(Figure::BackupOverheadRatio, median(&overhead));
    report.figure(Figure::IncrementalRatio, median(&incremental));
}

/// `a[i] / b[i]` for each round: runs of one round saw the same machine load.
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}

/// Creates the volume, labelled for `instances`, and fills it with the data.
async fn labelled_data(
    engine: &Engine,
    instances: &[String],
    report: &mut Report,
) -> std::path::PathBuf {
    let volume = unique("data");
    engine
        .create_volume(&volume, target_labels(SCENARIO, &instances.join(",")))
        .await;
    let mountpoint = engine.mountpoint(&volume).await;
    let watch = Stopwatch::start();
    let bytes = fill_dir(&mountpoint, SEED, FILES, FILES_PER_DIR, SIZES);
    // Written back to disk and read once, so that no run pays for the writeback or the
    // first read of the others: every timed run reads the files from the page cache.
    let synced = std::process::Command::new("sync").status();
    assert!(synced.is_ok_and(|s| s.success()), "sync failed");
    let read = read_all(&mountpoint);
    assert_eq!(read, bytes, "the data read back differs in size");
    report.detail(format!(
        "backup: wrote, synced and read back {FILES} files, {bytes} bytes, in {:.1} s",
        watch.elapsed().as_secs_f64()
    ));
    mountpoint
}

/// The default retention keeps one snapshot a day, so the second backup's `forget` removed
/// the first; the one left must have found the first as its parent.
fn assert_incremental(repository: &std::path::Path, instance: &str) {
    let output = restic(repository, &["snapshots", "--json"]);
    let snapshots: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("snapshots as JSON");
    let latest = snapshots
        .as_array()
        .and_then(|all| all.last())
        .expect("a snapshot");
    assert!(
        latest["parent"].is_string(),
        "the second backup of {instance} had no parent snapshot: {snapshots}"
    );
}

/// Reads every file under `dir` once; returns the bytes read.
fn read_all(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("reading a data directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            total += read_all(&path);
        } else {
            total += std::fs::read(&path).expect("reading a data file").len() as u64;
        }
    }
    total
}
