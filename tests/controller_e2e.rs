//! The controller against the real Docker engine: labelled volumes and containers appear in
//! and disappear from the API as Docker reports them, and config replacements apply without
//! a restart (or are rejected whole, keeping the previous config).

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use serde_json::Value;
use support::daemon::Daemon;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, VolumeGuard, docker, require_engine_and_images, unique_name,
};

const INSTANCES: &str = "
instances:
  - id: nightly
    repository: /srv/restic/nightly
    schedule: '0 2 * * *'
    timezone: Europe/Berlin
    env: {RESTIC_PASSWORD: test}
  - id: weekly
    customImage: example/backup:1
    schedule: '@weekly'
";

fn target_ids(schedules: &Value, instance: &str) -> Vec<String> {
    schedules
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["instanceId"] == instance)
        .map(|s| {
            s["targetIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn target<'a>(targets: &'a Value, id: &str) -> Option<&'a Value> {
    targets["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
}

#[tokio::test]
async fn labelled_volumes_appear_and_disappear_live() {
    require_engine_and_images();
    let marina = Daemon::start(INSTANCES);
    marina.wait_ready().await;

    let volume = unique_name("vol");
    let guard = VolumeGuard(volume.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nightly",
        &volume,
    ]);
    let id = format!("volume:{volume}");
    let targets = marina
        .wait_for("/api/targets", 5, "the labelled volume", |t| {
            target(t, &id).is_some()
        })
        .await;
    let entry = target(&targets, &id).unwrap();
    assert_eq!(entry["instances"], serde_json::json!(["nightly"]));
    assert_eq!(entry["source"], "label");
    assert_eq!(entry["conditions"][0]["reason"], "VolumeFound");
    let schedules = marina.get("/api/schedules").await;
    assert!(target_ids(&schedules, "nightly").contains(&id));

    docker(&["volume", "rm", &volume]);
    drop(guard);
    marina
        .wait_for("/api/targets", 5, "the removed volume gone", |t| {
            target(t, &id).is_none()
        })
        .await;
    let schedules = marina.get("/api/schedules").await;
    assert!(!target_ids(&schedules, "nightly").contains(&id));
}

#[tokio::test]
async fn a_labelled_database_container_is_a_target_and_follows_recreation() {
    require_engine_and_images();
    let marina = Daemon::start(INSTANCES);
    marina.wait_ready().await;

    let name = unique_name("db");
    let _guard = ContainerGuard(name.clone());
    let run = |instance: &str| {
        docker(&[
            "run",
            "--detach",
            "--name",
            &name,
            "--label",
            "dev.polarfox.marina.enabled=true",
            "--label",
            &format!("dev.polarfox.marina.instanceID={instance}"),
            "--label",
            "dev.polarfox.marina.db=redis",
            BUSYBOX_IMAGE,
            "sleep",
            "600",
        ]);
    };
    run("nightly");
    let id = format!("db:{name}");
    let targets = marina
        .wait_for("/api/targets", 5, "the labelled db container", |t| {
            target(t, &id).is_some_and(|e| e["conditions"][0]["reason"] == "ContainerRunning")
        })
        .await;
    assert_eq!(
        target(&targets, &id).unwrap()["instances"],
        serde_json::json!(["nightly"])
    );

    // Recreated with other labels: the target follows the new labels.
    docker(&["rm", "--force", &name]);
    run("weekly");
    marina
        .wait_for("/api/schedules", 5, "the target moved to weekly", |s| {
            target_ids(s, "weekly").contains(&id) && !target_ids(s, "nightly").contains(&id)
        })
        .await;

    // Stopped: still a target, but not ready, with the reason.
    docker(&["stop", "--time", "0", &name]);
    let targets = marina
        .wait_for("/api/targets", 5, "the stopped container", |t| {
            target(t, &id).is_some_and(|e| e["conditions"][0]["reason"] == "ContainerNotRunning")
        })
        .await;
    let message = target(&targets, &id).unwrap()["conditions"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("a dump needs it running"), "{message}");

    docker(&["rm", "--force", &name]);
    marina
        .wait_for("/api/targets", 5, "the removed container gone", |t| {
            target(t, &id).is_none()
        })
        .await;
}

#[tokio::test]
async fn unknown_instances_and_broken_labels_are_reported() {
    require_engine_and_images();
    let marina = Daemon::start(INSTANCES);
    marina.wait_ready().await;

    let orphan = unique_name("orphan");
    let _orphan = VolumeGuard(orphan.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nobody",
        &orphan,
    ]);
    let broken = unique_name("broken");
    let _broken = VolumeGuard(broken.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nightly",
        "--label",
        "dev.polarfox.marina.paths=../etc",
        &broken,
    ]);
    let plain = unique_name("plain");
    let _plain = VolumeGuard(plain.clone());
    docker(&["volume", "create", &plain]);

    let orphan_id = format!("volume:{orphan}");
    let targets = marina
        .wait_for("/api/targets", 5, "all three volumes", |t| {
            let has = |list: &Value, name: &str| {
                list.as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v.to_string().contains(name))
            };
            target(t, &orphan_id).is_some()
                && has(&t["invalidLabels"], &broken)
                && has(&t["unprotectedVolumes"], &plain)
        })
        .await;
    let entry = target(&targets, &orphan_id).unwrap();
    assert_eq!(entry["unassigned"], true);
    assert_eq!(entry["unknownInstances"], serde_json::json!(["nobody"]));
}

#[tokio::test]
async fn config_replaced_by_rename_applies_in_the_same_process() {
    require_engine_and_images();
    let marina = Daemon::start(INSTANCES);
    marina.wait_ready().await;
    let pid = marina.pid();

    // nightly's schedule changes, weekly goes, monthly arrives.
    marina.replace_config(
        "
instances:
  - id: nightly
    repository: /srv/restic/nightly
    schedule: '30 3 * * *'
    env: {RESTIC_PASSWORD: test}
  - id: monthly
    repository: /srv/restic/monthly
    schedule: '@monthly'
    env: {RESTIC_PASSWORD: test}
",
    );
    let schedules = marina
        .wait_for("/api/schedules", 5, "the new config", |s| {
            let ids: Vec<&str> = s
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["instanceId"].as_str().unwrap())
                .collect();
            ids == ["nightly", "monthly"]
        })
        .await;
    assert_eq!(schedules[0]["scheduleCron"], "30 3 * * *");
    assert_eq!(marina.get("/api/config").await["generation"], 2);

    // An invalid replacement is rejected whole; the previous config stays in force.
    marina.replace_config("instances:\n  - id: nightly\n    repository: /srv/r\n    schedule: '0 25 * * *'\n    env: {RESTIC_PASSWORD: test}\n");
    let config = marina
        .wait_for("/api/config", 5, "the rejection", |c| {
            c["lastReload"]["accepted"] == false
        })
        .await;
    assert_eq!(config["generation"], 2);
    let error = &config["lastReload"]["diagnostics"][0];
    assert_eq!(error["line"], 4);
    assert_eq!(error["path"], "instances[0].schedule");
    assert!(error["text"].as_str().unwrap().ends_with("config.yml:4:15: instances[0].schedule: `0 25 * * *` is not a valid cron expression: the hour field `25` is invalid (Number out of bounds; allowed: 0-23)"));
    let schedules = marina.get("/api/schedules").await;
    assert_eq!(
        schedules.as_array().unwrap().len(),
        2,
        "the previous config is still in force"
    );
    assert_eq!(marina.pid(), pid);
}

#[tokio::test]
async fn plan_prints_instances_targets_and_problems() {
    require_engine_and_images();
    let dir = tempfile::tempdir().unwrap();
    let config_target = unique_name("cfg");
    let labelled = unique_name("lbl");
    let broken = unique_name("brk");
    let config = INSTANCES.replace(
        "    env: {RESTIC_PASSWORD: test}\n",
        &format!(
            "    env: {{RESTIC_PASSWORD: test}}\n    targets:\n      - volume: {config_target}\n"
        ),
    );
    let path = dir.path().join("config.yml");
    std::fs::write(&path, config).unwrap();
    let _guards = [
        VolumeGuard(config_target.clone()),
        VolumeGuard(labelled.clone()),
        VolumeGuard(broken.clone()),
    ];
    docker(&["volume", "create", &config_target]);
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=weekly",
        &labelled,
    ]);
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=weekly",
        "--label",
        "dev.polarfox.marina.stopAtached=true",
        &broken,
    ]);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["plan", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line_of = |needle: &str| {
        table
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in:\n{table}"))
            .to_owned()
    };
    let nightly = line_of("nightly   restic");
    assert!(
        nightly.contains("0 2 * * *")
            && nightly.contains("Europe/Berlin")
            && nightly.contains("UTC"),
        "{nightly}"
    );
    assert!(line_of(&format!("volume:{config_target}")).contains("config"));
    let labelled_row = line_of(&format!("volume:{labelled}"));
    assert!(
        labelled_row.contains("label") && labelled_row.contains("ready"),
        "{labelled_row}"
    );
    assert!(
        line_of(&format!("volume:{broken}"))
            .contains("did you mean dev.polarfox.marina.stopAttached?")
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["plan", "--json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["instances"][0]["id"], "nightly");
    assert!(json["instances"][0]["nextRunAt"].is_string());

    std::fs::write(&path, "instances:\n  - id: x\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["plan", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "an invalid config exits 2");
}
