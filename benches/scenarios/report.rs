//! The outputs of a run: the console table, `target/bench/results.json`, and the dated block
//! in `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{Figure, Report};

/// The generated part of `docs/benchmarks.md` lies between these lines.
const START: &str = "<!-- bench:results:start -->";
const END: &str = "<!-- bench:results:end -->";

/// A value as the table shows it.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// The table's rows: figure, value, goal, pass/fail.
fn rows(report: &Report) -> Vec<[String; 4]> {
    Figure::ALL
        .iter()
        .filter_map(|figure| {
            let value = *report.figures.get(figure)?;
            let goal = figure.goal();
            Some([
                figure.key().to_owned(),
                number(value),
                goal.to_string(),
                if goal.met(value) { "pass" } else { "FAIL" }.to_owned(),
            ])
        })
        .collect()
}

/// Prints the table.
pub fn print_table(report: &Report) {
    let rows = rows(report);
    let header = ["figure", "value", "goal", "result"];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 4]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 1 {
                let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            }
        }
        println!("{}", text.trim_end());
    };
    println!();
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    println!();
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

/// Writes `target/bench/results.json`: every figure's key with its value.
pub fn write_results(report: &Report) {
    let mut values = serde_json::Map::new();
    for figure in Figure::ALL {
        let value = report
            .figures
            .get(&figure)
            .unwrap_or_else(|| panic!("{} was not measured", figure.key()));
        // Four decimals are more than any of these figures can resolve.
        let rounded = (value * 10_000.0).round() / 10_000.0;
        values.insert(figure.key().to_owned(), serde_json::json!(rounded));
    }
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).expect("creating target/bench");
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&values).expect("results as JSON");
    std::fs::write(&path, format!("{text}\n")).expect("writing results.json");
    println!("bench: wrote {}", path.display());
}

/// Replaces the generated block of `docs/benchmarks.md` with this run.
pub fn write_docs(report: &Report, elapsed: Duration) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
    let mut block = String::new();
    let _ = writeln!(block, "{START}");
    let _ = writeln!(
        block,
        "Measured on {}.\n",
        marina::clock::now().format("%Y-%m-%d at %H:%M UTC")
    );
    let _ = writeln!(block, "{}\n", machine());
    let _ = writeln!(block, "| figure | value | goal | result |");
    let _ = writeln!(block, "|---|--:|---|---|");
    for row in rows(report) {
        let _ = writeln!(
            block,
            "| `{}` | {} | {} | {} |",
            row[0], row[1], row[2], row[3]
        );
    }
    let _ = writeln!(block, "\nThe numbers behind them:\n");
    for detail in &report.details {
        let _ = writeln!(block, "- {detail}");
    }
    let _ = writeln!(
        block,
        "\nThe scenarios took {:.0} s (without building).",
        elapsed.as_secs_f64()
    );
    let _ = write!(block, "{END}");

    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = match (old.find(START), old.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{block}{}", &old[..start], &old[end + END.len()..])
        }
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(&path, new).expect("writing docs/benchmarks.md");
    println!("bench: recorded the run in {}", path.display());
}

/// One paragraph saying what the run ran on.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or_else(
            || "unknown CPU".to_owned(),
            |rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned(),
        );
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = command(&["uname", "-r"]);
    let docker = command(&[
        "docker",
        "info",
        "--format",
        "{{.ServerVersion}}, storage driver {{.Driver}}, cgroup v{{.CgroupVersion}}",
    ]);
    let restic = command(&["restic", "version"]);
    let restic = restic.split(" compiled").next().unwrap_or(&restic);
    let commit = command(&[
        "git",
        "-C",
        env!("CARGO_MANIFEST_DIR"),
        "describe",
        "--always",
        "--dirty",
    ]);
    format!(
        "Machine: {cores} cores ({model}), {memory_gib:.1} GiB RAM, Linux {kernel}; Docker Engine {docker}; {restic}; Marina {} at `{commit}`, release build.",
        env!("CARGO_PKG_VERSION")
    )
}

fn command(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}
