//! `marina plan`: renders what the controller sees and would do, for people (a table) or
//! programs (JSON). Rendering is pure, from a snapshot.

use std::fmt::Write as _;

use serde::Serialize;

use crate::reconcile::Snapshot;
use crate::reconcile::snapshot::{DiagnosticView, InstanceView};
use crate::reconcile::status::ConditionType;

/// The JSON form of a plan.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport<'a> {
    node_name: &'a str,
    instances: &'a [InstanceView],
    unassigned_targets: &'a [crate::reconcile::graph::UnassignedTarget],
    invalid_labels: &'a [crate::reconcile::graph::InvalidLabels],
    unprotected_volumes: &'a [String],
    config_warnings: Vec<&'a DiagnosticView>,
}

/// The plan as JSON.
#[must_use]
pub fn json(snapshot: &Snapshot) -> String {
    let report = PlanReport {
        node_name: &snapshot.node_name,
        instances: &snapshot.instances,
        unassigned_targets: &snapshot.unassigned_targets,
        invalid_labels: &snapshot.invalid_labels,
        unprotected_volumes: &snapshot.unprotected_volumes,
        config_warnings: warnings(snapshot),
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn warnings(snapshot: &Snapshot) -> Vec<&DiagnosticView> {
    snapshot
        .config
        .last_reload
        .iter()
        .flat_map(|r| &r.diagnostics)
        .collect()
}

/// The plan as a table for a terminal.
#[must_use]
pub fn table(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Node {} — Docker: {} volumes, {} containers — {} instances\n",
        snapshot.node_name,
        snapshot.docker.volumes,
        snapshot.docker.containers,
        snapshot.instances.len()
    );
    let rows: Vec<[String; 6]> = snapshot
        .instances
        .iter()
        .map(|i| {
            [
                i.id.to_string(),
                i.backend.to_owned(),
                i.schedule.clone(),
                i.timezone.clone(),
                i.next_run_at.map_or_else(
                    || "never".into(),
                    |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                ),
                condition(i, ConditionType::Ready),
            ]
        })
        .collect();
    write_table(
        &mut out,
        [
            "INSTANCE", "BACKEND", "SCHEDULE", "TIMEZONE", "NEXT RUN", "READY",
        ],
        &rows,
        "",
    );
    write_targets(&mut out, snapshot);
    write_problems(&mut out, snapshot);
    out
}

/// Each instance's targets.
fn write_targets(out: &mut String, snapshot: &Snapshot) {
    for instance in &snapshot.instances {
        let _ = writeln!(out, "\n{} targets:", instance.id);
        if instance.targets.is_empty() {
            let _ = writeln!(
                out,
                "  (none: add targets in the config or label volumes and containers)"
            );
            continue;
        }
        let rows: Vec<[String; 4]> = instance
            .targets
            .iter()
            .map(|t| {
                let source = serde_json::to_value(t.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let ready = t.conditions.first();
                let status = ready.map_or_else(String::new, |c| {
                    if c.is_true() {
                        "ready".into()
                    } else {
                        format!("{}: {}", c.reason, c.message)
                    }
                });
                let detail = t.db_kind.map_or_else(
                    || {
                        if t.kind == "db" {
                            // The image's name said nothing: the dump tools in the container tell.
                            return "auto (told by the dump tools in the running container)"
                                .to_owned();
                        }
                        t.paths
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                    |k| k.to_string(),
                );
                [t.id.to_string(), source, detail, status]
            })
            .collect();
        write_table(
            out,
            ["TARGET", "SOURCE", "PATHS/KIND", "STATUS"],
            &rows,
            "  ",
        );
    }
}

/// Unassigned targets, wrong labels, coverage and config warnings.
fn write_problems(out: &mut String, snapshot: &Snapshot) {
    if !snapshot.unassigned_targets.is_empty() {
        let _ = writeln!(
            out,
            "\nUnassigned targets (their labels name instances that are not configured):"
        );
        for u in &snapshot.unassigned_targets {
            let names: Vec<&str> = u
                .unknown_instances
                .iter()
                .map(crate::model::InstanceId::as_str)
                .collect();
            let _ = writeln!(out, "  {} → {}", u.target, names.join(", "));
        }
    }
    if !snapshot.invalid_labels.is_empty() {
        let _ = writeln!(out, "\nInvalid labels (not backed up until fixed):");
        for invalid in &snapshot.invalid_labels {
            for problem in &invalid.problems {
                let _ = writeln!(out, "  {}: {problem}", invalid.object);
            }
        }
    }
    if !snapshot.unprotected_volumes.is_empty() {
        let _ = writeln!(
            out,
            "\nUnprotected volumes (no backup policy): {}",
            snapshot.unprotected_volumes.join(", ")
        );
    }
    let warnings = warnings(snapshot);
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nConfig warnings:");
        for warning in warnings {
            let _ = writeln!(out, "  {}", warning.text);
        }
    }
}

fn condition(instance: &InstanceView, kind: ConditionType) -> String {
    instance
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .map_or_else(String::new, |c| {
            if c.is_true() {
                "yes".into()
            } else {
                format!("no ({})", c.reason)
            }
        })
}

/// Writes rows under a header, each column as wide as its widest cell.
pub(crate) fn write_table<const N: usize>(
    out: &mut String,
    header: [&str; N],
    rows: &[[String; N]],
    indent: &str,
) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{indent}{}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(header.to_vec()));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
}
