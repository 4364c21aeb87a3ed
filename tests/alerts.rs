//! The Prometheus alert rules and the Grafana dashboard under `deploy/` are valid, fire on
//! the series they are meant for, and use only metrics Marina exports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::path::Path;
use std::process::Command;

fn deploy(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is needed (Debian package prometheus; .ci/run installs it): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every metric name Marina registers, from the metrics module's source.
fn exported_metrics() -> Vec<String> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics/mod.rs"))
            .unwrap();
    source
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("name: \"")
                .and_then(|rest| rest.split('"').next())
        })
        .filter(|name| name.starts_with("marina_"))
        .map(str::to_owned)
        .collect()
}

/// The metric names used in a `PromQL` expression (identifiers starting with `marina_`).
fn used_metrics(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("marina_"))
        .map(|word| {
            word.trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum")
                .to_owned()
        })
        .collect()
}

#[test]
fn alert_rules_are_valid_and_fire_when_they_should() {
    let dir = deploy("prometheus");
    let checked = promtool(&["check", "rules", "alerts.yml"], &dir);
    assert!(checked.contains("SUCCESS: 4 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    for alert in [
        "MarinaBackupFailed",
        "MarinaNoRecentSuccess",
        "MarinaConfigReloadFailing",
        "MarinaUnassignedTargets",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}")),
            "{alert} is missing"
        );
    }
    let exported = exported_metrics();
    for name in used_metrics(&rules) {
        assert!(
            exported.contains(&name),
            "alerts.yml uses {name}, which Marina does not export"
        );
    }
}

#[test]
fn the_grafana_dashboard_queries_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("grafana/marina-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exported = exported_metrics();
    assert!(exported.len() >= 18, "{exported:?}");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let used = used_metrics(expr);
            assert!(!used.is_empty(), "{expr}");
            for name in used {
                assert!(
                    exported.contains(&name),
                    "panel {} uses {name}, which Marina does not export",
                    panel["title"]
                );
            }
        }
    }
}
