//! What `marina snapshots` and `marina restore` print for people: the snapshot table, the
//! restore plan, a job's log lines and its end. Pure functions of the API's answers, so the
//! wording is tested without a daemon.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::restore::{JobEntry, LogLine, RestorePlan, RestorePoint, SnapshotList};
use crate::backend::format_bytes;
use crate::plan::write_table;

/// The tag restic gives the safety snapshot an in-place restore saves first.
const PRE_RESTORE_TAG: &str = "marina:pre-restore";

/// Shown for a count restic did not record.
const UNKNOWN: &str = "—";

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The restore points as a table, newest first, with a line explaining each mark used.
#[must_use]
pub fn snapshot_table(list: &SnapshotList) -> String {
    let mut out = String::new();
    let of = match &list.target {
        Some(target) => format!("{}, {target}", list.instance),
        None => list.instance.clone(),
    };
    if list.snapshots.is_empty() {
        let _ = writeln!(
            out,
            "No snapshots of {of} yet; the next backup makes one (`marina backup {}` starts it now).",
            list.instance
        );
        return out;
    }
    let _ = writeln!(out, "Snapshots of {of}, newest first:\n");
    let rows: Vec<[String; 7]> = list
        .snapshots
        .iter()
        .map(|point| {
            [
                point.shown_id().to_owned(),
                point.time.map_or_else(|| UNKNOWN.to_owned(), time),
                point.host.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
                point.target.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
                point
                    .files
                    .map_or_else(|| UNKNOWN.to_owned(), |files| files.to_string()),
                point.bytes.map_or_else(|| UNKNOWN.to_owned(), format_bytes),
                if point.is_pre_restore() {
                    "pre-restore".to_owned()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    write_table(
        &mut out,
        ["ID", "TIME", "HOST", "TARGET", "FILES", "SIZE", ""],
        &rows,
        "",
    );
    if list
        .snapshots
        .iter()
        .any(|p| p.files.is_none() || p.bytes.is_none())
    {
        let target = list
            .target
            .as_ref()
            .map_or_else(String::new, |t| format!(" {t}"));
        let _ = writeln!(
            out,
            "\n{UNKNOWN}: not recorded by restic before 0.17; `marina snapshots {}{target} --count` counts it (about a second per snapshot).",
            list.instance
        );
    }
    if list.snapshots.iter().any(RestorePoint::is_pre_restore) {
        let _ = writeln!(
            out,
            "\npre-restore: saved ({PRE_RESTORE_TAG}) by an in-place restore just before it replaced the content; restoring it in place undoes that restore."
        );
    }
    out
}

/// The kind of thing a target's restore makes when it is not in place.
fn new_thing(target: &str) -> &'static str {
    if target.starts_with("db:") {
        "database container"
    } else {
        "volume"
    }
}

fn snapshot_line(point: &RestorePoint, files: Option<u64>, bytes: Option<u64>) -> String {
    let (Some(at), Some(short_id)) = (point.time, point.short_id.as_deref()) else {
        // A custom image's backup: only the image knows which one that is, and its size.
        return format!(
            "From backup {} of the instance's custom image: which backup that is and how big, only the image knows; it fetches it first",
            point.id
        );
    };
    let size = match (files, bytes) {
        (Some(files), Some(bytes)) => format!(
            "{files} {}, {}",
            if files == 1 { "file" } else { "files" },
            format_bytes(bytes)
        ),
        _ => format!("{UNKNOWN} files, {UNKNOWN}"),
    };
    let mut line = format!(
        "From snapshot {short_id} ({}, host {}): {size}",
        time(at),
        point.host.as_deref().unwrap_or(UNKNOWN),
    );
    if point.is_pre_restore() {
        line.push_str(
            "\n  (a pre-restore safety snapshot: restoring it in place undoes an earlier in-place restore)",
        );
    }
    line
}

/// Whether the plan restores a custom image's backup (the image fetches it; its snapshot
/// carries nothing but the name asked for).
fn from_image(plan: &RestorePlan) -> bool {
    plan.snapshot.short_id.is_none()
}

/// The plan: what is restored from where into what, its steps and its conflicts.
#[must_use]
pub fn plan_text(plan: &RestorePlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Restore of {} (instance {})",
        plan.target, plan.instance
    );
    let _ = writeln!(
        out,
        "{}",
        snapshot_line(&plan.snapshot, plan.files, plan.bytes)
    );
    if plan.in_place && from_image(plan) {
        let _ = writeln!(
            out,
            "In place: the content of {} is replaced; the image backs it up first with MARINA_PRE_RESTORE=1 (the job log names that backup; restore it in place by its name to undo).",
            plan.destination
        );
    } else if plan.in_place {
        let _ = writeln!(
            out,
            "In place: the content of {} is replaced; a safety snapshot tagged {PRE_RESTORE_TAG} is saved first (`marina snapshots {} {}` lists it; restore it in place to undo).",
            plan.destination, plan.instance, plan.target
        );
    } else {
        let _ = writeln!(
            out,
            "Into a new {} {}; nothing that exists now is changed.",
            new_thing(&plan.target),
            plan.destination
        );
    }
    let _ = writeln!(out, "\nSteps:");
    let width = plan
        .steps
        .iter()
        .map(|s| s.action.chars().count())
        .max()
        .unwrap_or(0);
    for (number, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}. {:<width$}  {}",
            number + 1,
            step.action,
            step.subject
        );
    }
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "\nConflicts (the restore cannot run until they are resolved):"
        );
        for conflict in &plan.conflicts {
            let _ = writeln!(out, "  - {conflict}");
        }
    }
    out
}

/// The last line of a dry run: nothing changed, and whether the real run would go ahead.
#[must_use]
pub fn dry_run_verdict(plan: &RestorePlan) -> String {
    if plan.conflicts.is_empty() {
        "\nDry run: nothing was changed. Run the same command without --dry-run to restore.\n"
            .to_owned()
    } else {
        "\nDry run: nothing was changed, and the restore would be refused because of the conflicts above.\n"
            .to_owned()
    }
}

/// The line saying the restore is queued.
#[must_use]
pub fn queued(target: &str, job: i64) -> String {
    format!("Restore of {target} queued as job {job}.\n")
}

/// The line saying a followed job waits for its turn.
#[must_use]
pub fn waiting(job: i64) -> String {
    format!("Job {job} waits for its turn (another job of the instance may be running).\n")
}

/// One line of a job's log: time, level, the target it is about, the sentence.
#[must_use]
pub fn log_line(line: &LogLine) -> String {
    let target = line
        .target_id
        .as_ref()
        .map_or_else(String::new, |t| format!("{t}: "));
    format!(
        "{} {:<5} {target}{}\n",
        line.timestamp.format("%H:%M:%S"),
        line.level,
        line.message
    )
}

/// The line saying how a followed job ended.
#[must_use]
pub fn job_end(job: &JobEntry) -> String {
    match &job.message {
        Some(message) if !message.is_empty() => {
            format!("Job {} ended: {} ({message}).\n", job.id, job.status)
        }
        _ => format!("Job {} ended: {}.\n", job.id, job.status),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn point(
        short: &str,
        time: &str,
        pre_restore: bool,
        counted: Option<(u64, u64)>,
    ) -> serde_json::Value {
        json!({
            "id": format!("{short}{}", "0".repeat(56)),
            "shortId": short,
            "time": time,
            "host": "node-1",
            "target": "volume:data",
            "tags": if pre_restore {
                json!(["marina", "instance:nightly", "volume:data", "marina:pre-restore"])
            } else {
                json!(["marina", "instance:nightly", "volume:data"])
            },
            "paths": ["/backup/nightly/volume/data"],
            "files": counted.map(|c| c.0),
            "bytes": counted.map(|c| c.1),
            "preRestore": pre_restore,
        })
    }

    fn list(value: serde_json::Value) -> SnapshotList {
        serde_json::from_value(value).unwrap()
    }

    fn plan(value: serde_json::Value) -> RestorePlan {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_table_marks_unknown_sizes_and_safety_snapshots() {
        let answer = json!({
            "instance": "nightly",
            "target": "volume:data",
            "snapshots": [
                point("5e6f7a8b", "2026-12-04T10:20:30Z", true, Some((1234, 5_452_595))),
                point("1a2b3c4d", "2026-12-04T02:00:00Z", false, None),
                point("9f8e7d6c", "2026-12-03T02:00:00Z", false, Some((1200, 5_000_000))),
            ],
        });
        assert_eq!(
            snapshot_table(&list(answer)),
            "Snapshots of nightly, volume:data, newest first:

ID        TIME                     HOST    TARGET       FILES  SIZE
5e6f7a8b  2026-12-04 10:20:30 UTC  node-1  volume:data  1234   5.2 MiB  pre-restore
1a2b3c4d  2026-12-04 02:00:00 UTC  node-1  volume:data  —      —
9f8e7d6c  2026-12-03 02:00:00 UTC  node-1  volume:data  1200   4.8 MiB

—: not recorded by restic before 0.17; `marina snapshots nightly volume:data --count` counts it (about a second per snapshot).

pre-restore: saved (marina:pre-restore) by an in-place restore just before it replaced the content; restoring it in place undoes that restore.
"
        );
    }

    #[test]
    fn a_counted_list_of_every_target_needs_no_hint() {
        let mut db = point("0badcafe", "2026-12-04T02:00:05Z", false, Some((1, 2048)));
        db["target"] = json!("db:app-pg");
        let answer = json!({
            "instance": "nightly",
            "target": null,
            "snapshots": [db, point("1a2b3c4d", "2026-12-04T02:00:00Z", false, Some((3, 100)))],
        });
        assert_eq!(
            snapshot_table(&list(answer)),
            "Snapshots of nightly, newest first:

ID        TIME                     HOST    TARGET       FILES  SIZE
0badcafe  2026-12-04 02:00:05 UTC  node-1  db:app-pg    1      2.0 KiB
1a2b3c4d  2026-12-04 02:00:00 UTC  node-1  volume:data  3      100 B
"
        );
    }

    #[test]
    fn an_empty_list_says_how_to_make_a_snapshot() {
        let answer = json!({"instance": "nightly", "target": "volume:data", "snapshots": []});
        assert_eq!(
            snapshot_table(&list(answer)),
            "No snapshots of nightly, volume:data yet; the next backup makes one (`marina backup nightly` starts it now).\n"
        );
    }

    #[test]
    fn a_plan_into_a_new_volume_lists_its_steps() {
        let plan = plan(json!({
            "instance": "nightly",
            "target": "volume:data",
            "snapshot": point("1a2b3c4d", "2026-12-04T02:00:00Z", false, None),
            "inPlace": false,
            "destination": "data-restore-20261204-102030",
            "files": 1234,
            "bytes": 5_452_595,
            "steps": [
                {"action": "create volume", "subject": "data-restore-20261204-102030"},
                {"action": "restore files", "subject": "data-restore-20261204-102030"},
            ],
            "conflicts": [],
        }));
        let text = format!("{}{}", plan_text(&plan), dry_run_verdict(&plan));
        assert_eq!(
            text,
            "Restore of volume:data (instance nightly)
From snapshot 1a2b3c4d (2026-12-04 02:00:00 UTC, host node-1): 1234 files, 5.2 MiB
Into a new volume data-restore-20261204-102030; nothing that exists now is changed.

Steps:
  1. create volume  data-restore-20261204-102030
  2. restore files  data-restore-20261204-102030

Dry run: nothing was changed. Run the same command without --dry-run to restore.
"
        );
    }

    #[test]
    fn an_in_place_plan_names_the_safety_snapshot_and_its_conflicts() {
        let plan = plan(json!({
            "instance": "nightly",
            "target": "volume:data",
            "snapshot": point("5e6f7a8b", "2026-12-04T10:20:30Z", true, Some((1234, 5_452_595))),
            "inPlace": true,
            "destination": "data",
            "files": 1234,
            "bytes": 5_452_595,
            "steps": [
                {"action": "stop container", "subject": "app"},
                {"action": "save safety snapshot", "subject": "volume:data"},
                {"action": "replace content", "subject": "data"},
                {"action": "start container", "subject": "app"},
            ],
            "conflicts": ["container `app-worker` uses volume data and is not one Marina may stop; stop it first or restore into a new volume"],
        }));
        let text = format!("{}{}", plan_text(&plan), dry_run_verdict(&plan));
        assert_eq!(
            text,
            "Restore of volume:data (instance nightly)
From snapshot 5e6f7a8b (2026-12-04 10:20:30 UTC, host node-1): 1234 files, 5.2 MiB
  (a pre-restore safety snapshot: restoring it in place undoes an earlier in-place restore)
In place: the content of data is replaced; a safety snapshot tagged marina:pre-restore is saved first (`marina snapshots nightly volume:data` lists it; restore it in place to undo).

Steps:
  1. stop container        app
  2. save safety snapshot  volume:data
  3. replace content       data
  4. start container       app

Conflicts (the restore cannot run until they are resolved):
  - container `app-worker` uses volume data and is not one Marina may stop; stop it first or restore into a new volume

Dry run: nothing was changed, and the restore would be refused because of the conflicts above.
"
        );
    }

    #[test]
    fn a_database_is_restored_into_a_new_container() {
        let mut snapshot = point("0badcafe", "2026-12-04T02:00:05Z", false, Some((1, 2048)));
        snapshot["target"] = json!("db:app-pg");
        let plan = plan(json!({
            "instance": "nightly",
            "target": "db:app-pg",
            "snapshot": snapshot,
            "inPlace": false,
            "destination": "app-pg-restore-20261204-102030",
            "files": 1,
            "bytes": 2048,
            "steps": [
                {"action": "create container", "subject": "app-pg-restore-20261204-102030"},
                {"action": "load dump", "subject": "app-pg-restore-20261204-102030"},
            ],
            "conflicts": [],
        }));
        assert_eq!(
            plan_text(&plan),
            "Restore of db:app-pg (instance nightly)
From snapshot 0badcafe (2026-12-04 02:00:05 UTC, host node-1): 1 file, 2.0 KiB
Into a new database container app-pg-restore-20261204-102030; nothing that exists now is changed.

Steps:
  1. create container  app-pg-restore-20261204-102030
  2. load dump         app-pg-restore-20261204-102030
"
        );
    }

    #[test]
    fn a_custom_image_plan_says_what_only_the_image_knows() {
        let plan = plan(json!({
            "instance": "archive",
            "target": "volume:data",
            "snapshot": {
                "id": "latest", "shortId": null, "time": null, "host": null, "target": null,
                "tags": null, "paths": null, "files": null, "bytes": null, "preRestore": null,
            },
            "inPlace": true,
            "destination": "data",
            "files": null,
            "bytes": null,
            "steps": [
                {"action": "run image", "subject": "my-backup:1 with MARINA_RESTORE=1 (snapshot latest of volume:data): /restore.sh"},
                {"action": "stop container", "subject": "app"},
                {"action": "save safety backup", "subject": "of volume data: image my-backup:1 backs it up with MARINA_PRE_RESTORE=1"},
                {"action": "replace content", "subject": "of volume data"},
                {"action": "restore files", "subject": "from the image's vol/data into volume data (/)"},
                {"action": "start container", "subject": "app"},
            ],
            "conflicts": [],
        }));
        assert_eq!(
            plan_text(&plan),
            "Restore of volume:data (instance archive)
From backup latest of the instance's custom image: which backup that is and how big, only the image knows; it fetches it first
In place: the content of data is replaced; the image backs it up first with MARINA_PRE_RESTORE=1 (the job log names that backup; restore it in place by its name to undo).

Steps:
  1. run image           my-backup:1 with MARINA_RESTORE=1 (snapshot latest of volume:data): /restore.sh
  2. stop container      app
  3. save safety backup  of volume data: image my-backup:1 backs it up with MARINA_PRE_RESTORE=1
  4. replace content     of volume data
  5. restore files       from the image's vol/data into volume data (/)
  6. start container     app
"
        );
    }

    #[test]
    fn log_lines_and_the_end_read_as_sentences() {
        let line: LogLine = serde_json::from_value(json!({
            "id": 7,
            "timestamp": "2026-12-04T10:20:31.250Z",
            "level": "INFO",
            "message": "Restored 1234 files (5.2 MiB) into volume data-restore-20261204-102030.",
            "instanceId": "nightly",
            "targetId": "volume:data",
            "jobStatusId": 12,
            "jobStatusIid": 3,
        }))
        .unwrap();
        assert_eq!(
            log_line(&line),
            "10:20:31 INFO  volume:data: Restored 1234 files (5.2 MiB) into volume data-restore-20261204-102030.\n"
        );
        let failed: JobEntry = serde_json::from_value(json!({
            "id": 12, "status": "failed", "isActive": false,
            "message": "the snapshot could not be read",
        }))
        .unwrap();
        assert_eq!(
            job_end(&failed),
            "Job 12 ended: failed (the snapshot could not be read).\n"
        );
        let done: JobEntry = serde_json::from_value(
            json!({"id": 12, "status": "success", "isActive": false, "message": null}),
        )
        .unwrap();
        assert_eq!(job_end(&done), "Job 12 ended: success.\n");
        assert_eq!(
            queued("volume:data", 12),
            "Restore of volume:data queued as job 12.\n"
        );
    }
}
