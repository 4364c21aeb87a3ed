//! The metrics registry: every SPEC §7 name with its documented labels, stale series
//! removed when the config changes, and text output that `promtool` accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::config::{self, Environment, Severity};
use crate::metrics::{
    ConfigRejected, ConfigReloaded, DockerEventReceived, DockerObject, DockerWatchRestarted,
    JobFinished, Reconciled, TargetBackedUp, TargetStaged,
};
use crate::model::{InstanceId, Inventory, InventoryChange, JobStatus, TargetId};
use crate::reconcile::{Message, State, reconcile};

struct NoEnv;

impl Environment for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn hostname(&self) -> Option<String> {
        Some("metrics-node".into())
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn instance(id: &str, targets: &[&str]) -> String {
    let mut text = format!(
        "  - id: {id}\n    repository: /srv/{id}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: x}}\n"
    );
    if !targets.is_empty() {
        text.push_str("    targets:\n");
        for target in targets {
            let (kind, name) = target.split_once(':').unwrap();
            let _ = writeln!(text, "      - {kind}: {name}");
        }
    }
    text
}

/// The snapshot the controller would publish for `instances` (YAML list items), after a
/// successful job of each instance in `succeeded`.
fn snapshot(instances: &[String], succeeded: &[&str]) -> Snapshot {
    let now = at("2027-03-01T12:00:00Z");
    let text = format!("instances:\n{}", instances.concat());
    let loaded = config::load_str(&text, "metrics.yml", &NoEnv).unwrap();
    let mut state = State::new(BTreeMap::new());
    state.apply(
        Message::ConfigLoaded {
            config: Arc::new(loaded.config),
            warnings: loaded.warnings,
        },
        now,
    );
    state.apply(
        Message::Inventory(InventoryChange::Listed(Inventory::default())),
        now,
    );
    for id in succeeded {
        state.apply(
            Message::JobFinished {
                instance: InstanceId::parse(id).unwrap(),
                kind: crate::model::JobKind::Backup,
                succeeded: true,
            },
            now,
        );
    }
    state.refresh_graph();
    for decision in reconcile(&state, now) {
        state.apply_decision(decision);
    }
    Snapshot::build(&state, now)
}

fn target(text: &str) -> TargetId {
    let (kind, name) = text.split_once(':').unwrap();
    let yaml = format!(
        "instances:\n{}",
        instance("t", &[&format!("{kind}:{name}")])
    );
    let loaded = config::load_str(&yaml, "t.yml", &NoEnv).unwrap();
    loaded.config.instances[0].targets[0].id.clone()
}

/// A registry with every metric holding at least one series: a snapshot of two instances
/// and one event of each kind.
fn populated() -> (Metrics, Snapshot) {
    let metrics = Metrics::new().unwrap();
    let snapshot = snapshot(
        &[
            instance("nightly", &["volume:app-data", "db:app-postgres"]),
            instance("hourly", &["volume:uploads"]),
        ],
        &["nightly"],
    );
    observe(&metrics, &snapshot);
    let nightly = InstanceId::parse("nightly").unwrap();
    metrics.emit(ConfigReloaded {
        file: "metrics.yml",
        instances: 2,
    });
    let diagnostics = [config::Diagnostic {
        severity: Severity::Error,
        file: "metrics.yml".into(),
        position: None,
        path: String::new(),
        message: "broken".into(),
    }];
    metrics.emit(ConfigRejected {
        diagnostics: &diagnostics,
    });
    metrics.emit(DockerEventReceived {
        object: DockerObject::Volume("app-data"),
        action: "create",
    });
    metrics.emit(DockerEventReceived {
        object: DockerObject::Container("0123abcd"),
        action: "start",
    });
    metrics.emit(DockerWatchRestarted {
        reason: "the Docker event stream ended",
        retry_in: Duration::from_millis(250),
    });
    metrics.emit(Reconciled {
        duration: Duration::from_micros(180),
    });
    metrics.emit(JobFinished {
        kind: crate::model::JobKind::Backup,
        instance: &nightly,
        status: JobStatus::Success,
        duration: Duration::from_secs(42),
        message: "all 2 targets backed up",
    });
    metrics.emit(TargetBackedUp {
        instance: &nightly,
        target: &target("volume:app-data"),
        summary: "3 new, 0 changed, 0 unmodified files; 1.2 MiB added",
        bytes_added: 1_258_291,
        bytes_read: 3_000_000,
        at: at("2027-03-01T12:00:40Z"),
    });
    metrics.emit(TargetStaged {
        instance: &nightly,
        summary: "pg_dumpall dump of 512 bytes staged as /x",
        bytes: 512,
    });
    (metrics, snapshot)
}

/// Metric family → label names of its series (histogram `le` excluded: it is the
/// encoder's).
fn label_sets(metrics: &Metrics) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut sets: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for family in metrics.gather() {
        let entry = sets.entry(family.name().to_owned()).or_default();
        for metric in family.get_metric() {
            let mut names: Vec<String> = metric
                .get_label()
                .iter()
                .map(|l| l.name().to_owned())
                .collect();
            names.sort();
            entry.insert(names);
        }
    }
    sets
}

#[test]
fn every_spec_metric_is_registered_with_its_documented_labels() {
    let (metrics, _) = populated();
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("marina_build_info", &["version"][..]),
        ("marina_config_last_reload_successful", &[][..]),
        ("marina_config_reloads_total", &["result"][..]),
        ("marina_docker_events_total", &["type"][..]),
        ("marina_docker_watch_restarts_total", &[][..]),
        ("marina_reconcile_duration_seconds", &[][..]),
        ("marina_targets", &["instance", "kind"][..]),
        ("marina_unassigned_targets", &[][..]),
        ("marina_unprotected_volumes", &[][..]),
        ("marina_jobs_total", &["instance", "status"][..]),
        ("marina_job_duration_seconds", &["instance"][..]),
        ("marina_jobs_running", &[][..]),
        ("marina_jobs_queued", &[][..]),
        (
            "marina_instance_last_success_timestamp_seconds",
            &["instance"][..],
        ),
        (
            "marina_instance_next_run_timestamp_seconds",
            &["instance"][..],
        ),
        (
            "marina_instance_schedule_interval_seconds",
            &["instance"][..],
        ),
        (
            "marina_target_last_success_timestamp_seconds",
            &["instance", "target"][..],
        ),
        ("marina_backup_bytes_added_total", &["instance"][..]),
        ("marina_staged_bytes_total", &["instance"][..]),
        ("marina_restores_total", &["instance", "status"][..]),
    ]);
    let sets = label_sets(&metrics);
    assert_eq!(
        sets.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>(),
        "exactly the metrics of SPEC §7, plus the schedule interval the alert rules need and the restore count"
    );
    for (name, labels) in expected {
        let labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        assert_eq!(
            sets[name],
            BTreeSet::from([labels]),
            "{name} has the documented labels"
        );
    }
}

#[test]
fn the_text_shows_each_series_with_its_value() {
    let (metrics, _) = populated();
    let text = metrics.render().unwrap();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    assert_eq!(
        line("marina_build_info{"),
        format!(
            "marina_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        line("marina_targets{instance=\"nightly\",kind=\"db\"}"),
        "marina_targets{instance=\"nightly\",kind=\"db\"} 1"
    );
    assert_eq!(
        line("marina_targets{instance=\"hourly\",kind=\"db\"}"),
        "marina_targets{instance=\"hourly\",kind=\"db\"} 0"
    );
    assert_eq!(
        line("marina_jobs_total{instance=\"nightly\",status=\"success\"}"),
        "marina_jobs_total{instance=\"nightly\",status=\"success\"} 1"
    );
    // Every final status exists from the start, so `increase()` sees a first failure.
    assert_eq!(
        line("marina_jobs_total{instance=\"hourly\",status=\"failed\"}"),
        "marina_jobs_total{instance=\"hourly\",status=\"failed\"} 0"
    );
    assert_eq!(
        line("marina_config_reloads_total{result=\"failure\"}"),
        "marina_config_reloads_total{result=\"failure\"} 1"
    );
    assert_eq!(
        line("marina_instance_last_success_timestamp_seconds{instance=\"nightly\"}"),
        format!(
            "marina_instance_last_success_timestamp_seconds{{instance=\"nightly\"}} {}",
            at("2027-03-01T12:00:00Z").timestamp()
        )
    );
    assert!(
        !text.contains("marina_instance_last_success_timestamp_seconds{instance=\"hourly\"}"),
        "no success known: no series"
    );
    assert!(
        line("marina_instance_next_run_timestamp_seconds{instance=\"hourly\"}")
            .ends_with(&at("2027-03-02T03:00:00Z").timestamp().to_string())
    );
    assert_eq!(
        line("marina_target_last_success_timestamp_seconds{"),
        format!(
            "marina_target_last_success_timestamp_seconds{{instance=\"nightly\",target=\"volume:app-data\"}} {}",
            at("2027-03-01T12:00:40Z").timestamp()
        )
    );
    assert_eq!(
        line("marina_staged_bytes_total{instance=\"nightly\"}"),
        "marina_staged_bytes_total{instance=\"nightly\"} 3000512"
    );
    assert!(
        line("marina_job_duration_seconds_bucket{instance=\"nightly\",le=\"28800\"}")
            .ends_with(" 1")
    );
    assert!(line("marina_reconcile_duration_seconds_bucket{le=\"0.00025\"}").ends_with(" 1"));
}

#[test]
fn label_values_are_bounded_by_the_config() {
    let (metrics, _) = populated();
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for family in metrics.gather() {
        for metric in family.get_metric() {
            for label in metric.get_label() {
                values
                    .entry(label.name().to_owned())
                    .or_default()
                    .insert(label.value().to_owned());
            }
        }
    }
    let set = |items: &[&str]| {
        items
            .iter()
            .map(|i| (*i).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        values,
        BTreeMap::from([
            ("instance".to_owned(), set(&["hourly", "nightly"])),
            ("kind".to_owned(), set(&["db", "volume"])),
            ("result".to_owned(), set(&["failure", "success"])),
            (
                "status".to_owned(),
                set(&[
                    "aborted",
                    "failed",
                    "partial_success",
                    "success",
                    "timed_out"
                ])
            ),
            ("target".to_owned(), set(&["volume:app-data"])),
            ("type".to_owned(), set(&["container", "volume"])),
            ("version".to_owned(), set(&[env!("CARGO_PKG_VERSION")])),
        ]),
        "label values come from the config and fixed vocabularies only: no job ids, no paths"
    );
}

#[test]
fn series_of_instances_and_targets_that_leave_the_config_are_removed() {
    let (metrics, _) = populated();
    let hourly = InstanceId::parse("hourly").unwrap();
    metrics.emit(JobFinished {
        kind: crate::model::JobKind::Backup,
        instance: &hourly,
        status: JobStatus::Failed,
        duration: Duration::from_secs(3),
        message: "all 1 targets failed",
    });
    let text = metrics.render().unwrap();
    assert!(text.contains("instance=\"hourly\""));
    assert!(text.contains("target=\"volume:app-data\""));

    // `hourly` is removed, and `nightly` no longer has volume:app-data.
    let after = snapshot(&[instance("nightly", &["db:app-postgres"])], &["nightly"]);
    observe(&metrics, &after);
    let text = metrics.render().unwrap();
    assert!(
        !text.contains("instance=\"hourly\""),
        "stale instance series:\n{text}"
    );
    assert!(
        !text.contains("target=\"volume:app-data\""),
        "stale target series:\n{text}"
    );
    assert!(text.contains("marina_targets{instance=\"nightly\",kind=\"volume\"} 0"));
    assert!(text.contains("marina_targets{instance=\"nightly\",kind=\"db\"} 1"));
    assert!(text.contains("marina_jobs_total{instance=\"nightly\",status=\"success\"} 1"));

    // A job of a removed instance that ends afterwards is swept by the next snapshot.
    metrics.emit(JobFinished {
        kind: crate::model::JobKind::Backup,
        instance: &hourly,
        status: JobStatus::Success,
        duration: Duration::from_secs(3),
        message: "all 1 targets backed up",
    });
    observe(&metrics, &after);
    assert!(!metrics.render().unwrap().contains("instance=\"hourly\""));
}

#[test]
fn state_gauges_follow_the_snapshot() {
    let (metrics, mut snapshot) = populated();
    snapshot.jobs_running = 2;
    snapshot.jobs_waiting = 3;
    snapshot.unprotected_volumes = vec!["a".into(), "b".into()];
    observe(&metrics, &snapshot);
    let text = metrics.render().unwrap();
    for line in [
        "marina_jobs_running 2",
        "marina_jobs_queued 3",
        "marina_unprotected_volumes 2",
        "marina_unassigned_targets 0",
        "marina_config_last_reload_successful 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    if let Some(reload) = &mut snapshot.config.last_reload {
        reload.accepted = false;
    }
    observe(&metrics, &snapshot);
    assert!(
        metrics
            .render()
            .unwrap()
            .lines()
            .any(|l| l == "marina_config_last_reload_successful 0")
    );
}

#[test]
fn separate_handles_never_share_counts() {
    let (first, _) = populated();
    let second = Metrics::new().unwrap();
    let text = second.render().unwrap();
    assert!(!text.contains("marina_jobs_total{"), "{text}");
    assert!(first.render().unwrap().contains("marina_jobs_total{"));
}

/// Runs `promtool check metrics` on `text`; fails when promtool is missing (CI installs
/// Debian's `prometheus` package, which has it).
pub(crate) fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install it with `apt-get install prometheus`")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool rejected the metrics:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(complaints.trim().is_empty(), "promtool lint: {complaints}");
}

#[test]
fn the_text_output_passes_promtool() {
    let (metrics, _) = populated();
    promtool_check(&metrics.render().unwrap());
}
