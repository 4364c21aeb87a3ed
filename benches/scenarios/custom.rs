//! Custom-image backups, side by side with `docker run --rm` of the same image and script.
//!
//! - `custom_overhead_ratio`: Marina's job (`lastStartedAt` → `lastCompletedAt`: staging the
//!   volume with a helper container, running the image, removing it and the staging) ÷
//!   `docker run --rm` of the image on the volume mounted read-only where Marina's staging
//!   would put it, timed around the CLI call. The script archives 128 mebibytes of seeded
//!   pseudo-random data with `tar | gzip -1`, a few seconds of real work, so fixed costs show
//!   without dominating. Three rounds, `docker run` first in even rounds and Marina first in
//!   odd ones; the median of the rounds' ratios.
//! - `log_lines_per_s` and `log_lines_lost`: the image prints 100,000 numbered lines as fast
//!   as it can; the rate is the lines stored ÷ the time between the first and the last line's
//!   timestamp (taken by Marina as it captures each line), and the loss is how many of the
//!   100,000 numbers are missing from `/api/logs/job/{id}` after the job ended.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::daemon::Marina;
use crate::support::{Engine, Stopwatch, Sweep, docker, fill_dir, median, target_labels, unique};
use crate::{Figure, Report, tools};

const SCENARIO: &str = "custom";
const ROUNDS: usize = 3;
const FILES: usize = 128;
const FILE_BYTES: usize = 1024 * 1024;
const SEED: u64 = 0x6375_7374_6f6d;
const JOB_LIMIT: Duration = Duration::from_mins(5);
/// Where a custom-image job's log marks the end of its steps: staging, getting ready to run
/// the image, running it.
const CUSTOM_STEPS: &[&str] = &[
    "Target staged",
    "Running the backup container",
    "The backup image finished",
];

pub async fn run(engine: &Engine, report: &mut Report) {
    let (image, _image) = tools::build();
    let _sweep = Sweep::scenario(SCENARIO);
    let dir = tempfile::tempdir().expect("a scenario directory");

    let volume = unique("cdata");
    engine
        .create_volume(&volume, target_labels(SCENARIO, "custom"))
        .await;
    fill_dir(
        &engine.mountpoint(&volume).await,
        SEED,
        FILES,
        FILES,
        FILE_BYTES..FILE_BYTES + 1,
    );
    let small = unique("small");
    engine
        .create_volume(&small, target_labels(SCENARIO, "logs"))
        .await;
    std::fs::write(
        engine.mountpoint(&small).await.join("note.txt"),
        "one small file, so the instance has something to stage\n",
    )
    .expect("writing a small file");

    let config = format!(
        "instances:\n  - id: custom\n    customImage: {image}\n    schedule: \"0 3 1 1 *\"\n    env:\n      MODE: work\n  - id: logs\n    customImage: {image}\n    schedule: \"0 3 1 1 *\"\n    env:\n      MODE: lines\n"
    );
    let marina = Marina::spawn(dir.path(), &config);
    marina.wait_ready(Duration::from_secs(30)).await;

    let mount = format!("{volume}:/backup/run/vol/{volume}:ro");
    let mut bare = Vec::with_capacity(ROUNDS);
    let mut jobs = Vec::with_capacity(ROUNDS);
    let mut steps = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let marina_first = round % 2 == 1;
        if marina_first {
            let (id, job) = marina.backup("custom", JOB_LIMIT).await;
            jobs.push(job.as_secs_f64());
            steps.push(marina.job_steps(id, CUSTOM_STEPS).await);
        }
        let watch = Stopwatch::start();
        docker(&[
            "run",
            "--rm",
            "--env",
            "MODE=work",
            "--env",
            "MARINA_BACKUP_DIR=/backup/run",
            "--volume",
            &mount,
            &image,
            "/backup.sh",
        ]);
        bare.push(watch.elapsed().as_secs_f64());
        if !marina_first {
            let (id, job) = marina.backup("custom", JOB_LIMIT).await;
            jobs.push(job.as_secs_f64());
            steps.push(marina.job_steps(id, CUSTOM_STEPS).await);
        }
    }
    let ratios: Vec<f64> = jobs.iter().zip(&bare).map(|(j, b)| j / b).collect();
    let ratio = median(&ratios);
    report.detail(format!(
        "custom image: docker run --rm {} s; Marina job {} s (median of the rounds' ratios {ratio:.3})",
        seconds(&bare),
        seconds(&jobs)
    ));
    report.detail(format!(
        "custom image: inside Marina's jobs, staging + preparing the container + running it + cleaning up: {}",
        steps.join("; ")
    ));
    report.figure(Figure::CustomOverheadRatio, ratio);

    log_lines(&marina, report).await;
    marina.stop();
}

/// Runs the `logs` instance, whose image prints the numbered lines, and reads its job log.
async fn log_lines(marina: &Marina, report: &mut Report) {
    let (id, job) = marina.backup("logs", JOB_LIMIT).await;
    let log = marina.job_log(id).await;
    let mut seen = BTreeSet::new();
    let mut first = None;
    let mut last = None;
    let mut captured = 0_usize;
    for line in &log {
        let Some(number) = line["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("bench line "))
            .and_then(|rest| rest.get(..6))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        captured += 1;
        seen.insert(number);
        let at = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap_or(""))
            .expect("log line timestamps are RFC 3339");
        first.get_or_insert(at);
        last = Some(at);
    }
    let missing = (1..=tools::LINES).filter(|n| !seen.contains(n)).count();
    let window = match (first, last) {
        (Some(first), Some(last)) => (last - first).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let rate = captured as f64 / window.as_secs_f64().max(0.001);
    report.detail(format!(
        "log lines: {captured} lines captured in {:.3} s ({rate:.0}/s); job {:.2} s in all; {missing} missing",
        window.as_secs_f64(),
        job.as_secs_f64()
    ));
    report.figure(Figure::LogLinesPerS, rate);
    report.figure(Figure::LogLinesLost, missing as f64);
}

fn seconds(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}
