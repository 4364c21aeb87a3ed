//! `make bench`: Marina's speed and memory targets, measured against the real Docker
//! engine and the release binary, side by side with the bare tools where a ratio is asked for.
//!
//! Prints a table (figure, value, goal, pass/fail), writes `target/bench/results.json` with
//! one number per figure, and records the run — date, machine, table, details — in
//! `docs/benchmarks.md` between its `bench:results` markers. Exits 1 when a goal is missed.
//!
//! `cargo bench --bench scenarios -- NAME…` runs only the named scenarios (`events`,
//! `startup`, `idle`, `backup`, `dump`, `custom`) and prints their figures without writing
//! any file; so does a run with `MARINA_BENCH_BINARY=PATH`, which measures that binary (another
//! build, e.g. the one before a change) instead of the one Cargo built.
//!
//! Every Docker object gets the prefix `marina-bench-<pid>` and the label
//! `marina.bench.run=<prefix>`; guards remove them, the temporary directories and the Marina
//! processes when a scenario ends, also when it panics. What a run killed outright left
//! behind is removed by the next run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark that cannot run reports by panicking.
#![allow(clippy::cast_precision_loss)] // Counts and bytes as f64 for rates and ratios.

mod backup;
mod custom;
mod daemon;
mod dump;
mod events;
mod idle;
mod report;
mod startup;
mod support;
#[path = "../../tests/support/mod.rs"]
mod test_support;
mod tools;

use std::collections::BTreeMap;

use support::{BUSYBOX, Engine, Stopwatch, Sweep, docker_output};

/// The figures, in the order of the table in docs/benchmarks.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// p99 of labelled volume created → target in `/api/targets`, over 200 volumes (ms).
    EventToApiP99Ms,
    /// Median of config renamed into place → new schedule in `/api/schedules`, of 20 (ms).
    ConfigReloadMs,
    /// Process start → `/readyz` 200 with 2,000 volumes and 500 containers (s).
    Resync2000VolumesS,
    /// Peak resident memory in that start-up (mebibytes).
    Rss2000VolumesMb,
    /// Resident memory after 60 s idle with 10 instances and 50 targets (mebibytes).
    IdleRssMb,
    /// Marina's job ÷ bare `restic backup` of 1 GB in 10,000 files.
    BackupOverheadRatio,
    /// Marina's second backup of the unchanged volume ÷ its first.
    IncrementalRatio,
    /// Peak resident memory while a dump of 2 gibibytes streams into restic (mebibytes).
    DumpPeakRssMb,
    /// Marina's custom-image job ÷ `docker run --rm` of the same image and script.
    CustomOverheadRatio,
    /// Lines of a custom image's output captured into the job log per second.
    LogLinesPerS,
    /// Of 100,000 printed lines, those missing from the job log.
    LogLinesLost,
}

/// How a value is compared with its goal.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// Strictly less than.
    Below(f64),
    /// Less than or equal.
    AtMost(f64),
    /// Greater than or equal.
    AtLeast(f64),
    /// Equal.
    Exactly(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Self::Below(goal) => value < goal,
            Self::AtMost(goal) => value <= goal,
            Self::AtLeast(goal) => value >= goal,
            #[allow(clippy::float_cmp)] // A count, compared exactly.
            Self::Exactly(goal) => value == goal,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Below(goal) => write!(f, "< {}", report::number(*goal)),
            Self::AtMost(goal) => write!(f, "≤ {}", report::number(*goal)),
            Self::AtLeast(goal) => write!(f, "≥ {}", report::number(*goal)),
            Self::Exactly(goal) => write!(f, "{}", report::number(*goal)),
        }
    }
}

impl Figure {
    const ALL: [Self; 11] = [
        Self::EventToApiP99Ms,
        Self::ConfigReloadMs,
        Self::Resync2000VolumesS,
        Self::Rss2000VolumesMb,
        Self::IdleRssMb,
        Self::BackupOverheadRatio,
        Self::IncrementalRatio,
        Self::DumpPeakRssMb,
        Self::CustomOverheadRatio,
        Self::LogLinesPerS,
        Self::LogLinesLost,
    ];

    /// The key in `results.json`.
    fn key(self) -> &'static str {
        match self {
            Self::EventToApiP99Ms => "event_to_api_p99_ms",
            Self::ConfigReloadMs => "config_reload_ms",
            Self::Resync2000VolumesS => "resync_2000_volumes_s",
            Self::Rss2000VolumesMb => "rss_2000_volumes_mb",
            Self::IdleRssMb => "idle_rss_mb",
            Self::BackupOverheadRatio => "backup_overhead_ratio",
            Self::IncrementalRatio => "incremental_ratio",
            Self::DumpPeakRssMb => "dump_peak_rss_mb",
            Self::CustomOverheadRatio => "custom_overhead_ratio",
            Self::LogLinesPerS => "log_lines_per_s",
            Self::LogLinesLost => "log_lines_lost",
        }
    }

    /// The goal the figure must meet.
    fn goal(self) -> Goal {
        match self {
            Self::EventToApiP99Ms => Goal::Below(100.0),
            Self::ConfigReloadMs => Goal::Below(1000.0),
            Self::Resync2000VolumesS => Goal::Below(2.0),
            Self::Rss2000VolumesMb | Self::DumpPeakRssMb => Goal::Below(64.0),
            Self::IdleRssMb => Goal::Below(20.0),
            Self::BackupOverheadRatio => Goal::AtMost(1.15),
            Self::IncrementalRatio => Goal::AtMost(0.15),
            Self::CustomOverheadRatio => Goal::AtMost(1.2),
            Self::LogLinesPerS => Goal::AtLeast(20_000.0),
            Self::LogLinesLost => Goal::Exactly(0.0),
        }
    }
}

/// What the scenarios measured.
#[derive(Debug, Default)]
pub struct Report {
    figures: BTreeMap<Figure, f64>,
    /// Supporting numbers (the sides of each ratio, spreads), for the console and the docs.
    details: Vec<String>,
}

impl Report {
    /// Records a figure.
    pub fn figure(&mut self, figure: Figure, value: f64) {
        let goal = figure.goal();
        println!(
            "bench: {} = {} (goal {goal}: {})",
            figure.key(),
            report::number(value),
            if goal.met(value) { "pass" } else { "FAIL" }
        );
        self.figures.insert(figure, value);
    }

    /// Records a supporting number.
    pub fn detail(&mut self, line: String) {
        println!("bench: {line}");
        self.details.push(line);
    }
}

const SCENARIOS: [&str; 6] = ["events", "startup", "idle", "backup", "dump", "custom"];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (what `make test` runs)
    // builds this target too and runs it without: a compile check, not a five-minute run.
    if !args.iter().any(|a| a == "--bench") {
        println!("bench: run by `cargo bench --bench scenarios` or `make bench`; nothing to do");
        return;
    }
    // Every other argument names a scenario to run alone.
    let only: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    for name in &only {
        assert!(
            SCENARIOS.contains(&name.as_str()),
            "unknown scenario {name}; the scenarios are {SCENARIOS:?}"
        );
    }
    let selected = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    preflight();

    println!("bench: measuring {}", daemon::binary().to_string_lossy());
    support::remove_leftovers_of_dead_runs();
    let total = Stopwatch::start();
    let sweep = Sweep::run();
    let engine = Engine::connect().await;
    let mut report = Report::default();
    for name in SCENARIOS.into_iter().filter(|n| selected(n)) {
        println!("bench: scenario {name}");
        let watch = Stopwatch::start();
        match name {
            "events" => events::run(&engine, &mut report).await,
            "startup" => startup::run(&engine, &mut report).await,
            "idle" => idle::run(&engine, &mut report).await,
            "backup" => backup::run(&engine, &mut report).await,
            "dump" => dump::run(&mut report).await,
            "custom" => custom::run(&engine, &mut report).await,
            _ => unreachable!("checked above"),
        }
        println!(
            "bench: scenario {name} took {:.1} s",
            watch.elapsed().as_secs_f64()
        );
    }
    let elapsed = total.elapsed();
    report::print_table(&report);
    let all_met = report
        .figures
        .iter()
        .all(|(figure, value)| figure.goal().met(*value));
    let other_binary = std::env::var_os("MARINA_BENCH_BINARY").is_some();
    if only.is_empty() && !other_binary {
        report::write_results(&report);
        report::write_docs(&report, elapsed);
    } else {
        println!("bench: only some scenarios ran, or another binary was measured; nothing written");
    }
    println!(
        "bench: scenarios took {:.1} s in all",
        elapsed.as_secs_f64()
    );
    // `exit` runs no destructors: sweep first (a no-op unless a scenario left something).
    drop(sweep);
    if !all_met {
        eprintln!("bench: at least one goal was missed");
        std::process::exit(1);
    }
}

/// Fails early, with the fix, when the engine, the images or restic are missing.
fn preflight() {
    let info = docker_output(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.status.success(),
        "no Docker engine answers (`docker info` failed: {}); start one first",
        String::from_utf8_lossy(&info.stderr).trim()
    );
    let image = docker_output(&["image", "inspect", BUSYBOX]);
    assert!(
        image.status.success(),
        "image {BUSYBOX} is missing; build it with `make test-images`"
    );
    let restic = std::process::Command::new("restic").arg("version").output();
    assert!(
        restic.is_ok_and(|o| o.status.success()),
        "restic is not installed (apt-get install restic)"
    );
}
