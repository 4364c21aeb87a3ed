//! `marina snapshots` and `marina restore` as users run them: argument checks (exit 2 before
//! any request), what the commands send, what they print, and their exit codes. The daemon
//! is a stand-in HTTP server that answers as docs/openapi.yaml documents and records every
//! request, so each test proves what went over the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use assert_cmd::Command;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

fn marina() -> Command {
    let mut cmd = Command::cargo_bin("marina").unwrap();
    // Only what each test sets: no CONFIG_FILE or secrets from the developer's shell.
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
    body: Value,
}

/// How the stand-in answers: from the request and how many requests with the same path came
/// before it.
type Script = dyn Fn(&Seen, usize) -> (u16, Value) + Send + Sync;

/// A stand-in daemon on a loopback port, on its own thread and runtime.
struct StandIn {
    url: String,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    fn start(script: impl Fn(&Seen, usize) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let record = Arc::clone(&seen);
        // Detached: the thread ends with the test process.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let script = Arc::clone(&script);
                        let record = Arc::clone(&record);
                        async move {
                            let request = Seen {
                                method: method.to_string(),
                                path: uri.path().to_owned(),
                                query: uri.query().map(url_pairs).unwrap_or_default(),
                                authorization: headers
                                    .get("authorization")
                                    .map(|v| v.to_str().unwrap().to_owned()),
                                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            };
                            let before = {
                                let mut seen = record.lock().unwrap();
                                let before = seen.iter().filter(|s| s.path == request.path).count();
                                seen.push(request.clone());
                                before
                            };
                            let (status, body) = script(&request, before);
                            (StatusCode::from_u16(status).unwrap(), axum::Json(body))
                                .into_response()
                        }
                    },
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `a=b&c=d%3Ae` as a map, decoded.
fn url_pairs(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn point(short: &str, time: &str, pre_restore: bool, counted: Option<(u64, u64)>) -> Value {
    json!({
        "id": format!("{short}{}", "0".repeat(56)),
        "shortId": short,
        "time": time,
        "host": "node-1",
        "target": "volume:data",
        "tags": ["marina", "instance:nightly", "volume:data"],
        "paths": ["/backup/nightly/volume/data"],
        "files": counted.map(|c| c.0),
        "bytes": counted.map(|c| c.1),
        "preRestore": pre_restore,
    })
}

fn plan(in_place: bool, conflicts: &[&str]) -> Value {
    json!({
        "instance": "nightly",
        "target": "volume:data",
        "snapshot": point("1a2b3c4d", "2026-12-04T02:00:00Z", false, None),
        "inPlace": in_place,
        "destination": if in_place { "data" } else { "data-restore-20261204-102030" },
        "files": 1234,
        "bytes": 5_452_595,
        "steps": [
            {"action": "create volume", "subject": "data-restore-20261204-102030"},
            {"action": "restore files", "subject": "data-restore-20261204-102030"},
        ],
        "conflicts": conflicts,
    })
}

fn log_line(id: i64, message: &str) -> Value {
    json!({
        "id": id,
        "timestamp": "2026-12-04T10:20:31Z",
        "level": "INFO",
        "message": message,
        "instanceId": "nightly",
        "targetId": "volume:data",
        "jobStatusId": 12,
        "jobStatusIid": 3,
    })
}

fn job(status: &str, message: Option<&str>) -> Value {
    json!({
        "id": 12, "iid": 3, "instanceId": "nightly", "nodeName": "node-1",
        "isActive": matches!(status, "scheduled" | "in_progress"), "status": status,
        "lastStartedAt": null, "lastCompletedAt": null,
        "lastTargetsSuccessful": 0, "lastTargetsTotal": 1,
        "createdAt": "2026-12-04T10:20:30Z", "updatedAt": "2026-12-04T10:20:30Z",
        "trigger": "manual", "message": message, "kind": "restore",
        "restore": {"target": "volume:data", "snapshot": "latest", "to": null, "inPlace": false},
    })
}

/// A daemon that queues the restore as job 12, which waits, runs and ends `end`; its log
/// has two lines.
fn queuing_daemon(end: &'static str, message: Option<&'static str>) -> StandIn {
    StandIn::start(move |request, before| match request.path.as_str() {
        "/api/instances/nightly/restore" => (
            202,
            json!({"jobId": 12, "iid": 3, "plan": plan(false, &[])}),
        ),
        "/api/jobs" => {
            let status = ["scheduled", "in_progress"]
                .get(before)
                .copied()
                .unwrap_or(end);
            // Another job, newer than the one followed, comes first.
            (
                200,
                json!([{"id": 13}, job(status, if status == end { message } else { None })]),
            )
        }
        "/api/logs/job/12" => match request.query.get("afterId").map(String::as_str) {
            Some("0") => (200, json!([log_line(1, "Restore started.")])),
            Some("1") => (200, json!([log_line(2, "Restored 1234 files.")])),
            _ => (200, json!([])),
        },
        _ => (404, json!({"error": "no such route"})),
    })
}

#[test]
fn help_names_the_commands_and_what_is_safe() {
    let root = marina().arg("--help").output().unwrap();
    assert_eq!(root.status.code(), Some(0));
    for command in ["snapshots", "restore"] {
        assert!(stdout(&root).contains(command), "{}", stdout(&root));
    }
    let restore = marina().args(["restore", "--help"]).output().unwrap();
    assert_eq!(restore.status.code(), Some(0));
    let text = stdout(&restore);
    for needle in [
        "nothing that exists is touched",
        "--in-place",
        "marina:pre-restore",
        "--dry-run",
        "--no-wait",
        "--snapshot <ID|latest>",
        "--to <NAME>",
        "Ctrl-C stops following, not the restore",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    let snapshots = marina().args(["snapshots", "--help"]).output().unwrap();
    assert_eq!(snapshots.status.code(), Some(0));
    assert!(
        stdout(&snapshots).contains("--count"),
        "{}",
        stdout(&snapshots)
    );
}

#[test]
fn wrong_arguments_are_usage_errors_before_any_request() {
    // A port nothing listens on: a request would fail with exit 1, not 2.
    let url = "http://127.0.0.1:9";
    let bare = marina()
        .args(["restore", "nightly", "data", "--url", url])
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(2), "{}", stderr(&bare));
    assert!(
        stderr(&bare)
            .contains("write `volume:data` for the Docker volume or `db:data` for the database"),
        "{}",
        stderr(&bare)
    );
    for args in [
        &[
            "restore",
            "nightly",
            "volume:data",
            "--to",
            "copy",
            "--in-place",
        ][..],
        &[
            "restore",
            "nightly",
            "volume:data",
            "--dry-run",
            "--no-wait",
        ],
        &["restore", "nightly", "volume:data", "--snapshot", "a b"],
        &["restore", "nightly", "volume:data", "--to", "no/slash"],
        &["restore", "bad!id", "volume:data"],
        &["restore", "nightly"],
        &["snapshots", "nightly", "vol:data"],
    ] {
        let output = marina().args(args).args(["--url", url]).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn snapshots_prints_a_table_or_the_answer_as_json() {
    let answer = json!({
        "instance": "nightly",
        "target": "volume:data",
        "snapshots": [
            point("5e6f7a8b", "2026-12-04T10:20:30Z", true, Some((1234, 5_452_595))),
            point("1a2b3c4d", "2026-12-04T02:00:00Z", false, None),
        ],
    });
    let sent = answer.clone();
    let daemon = StandIn::start(move |_, _| (200, sent.clone()));
    let table = marina()
        .args(["snapshots", "nightly", "volume:data", "--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    assert_eq!(
        stdout(&table),
        "Snapshots of nightly, volume:data, newest first:

ID        TIME                     HOST    TARGET       FILES  SIZE
5e6f7a8b  2026-12-04 10:20:30 UTC  node-1  volume:data  1234   5.2 MiB  pre-restore
1a2b3c4d  2026-12-04 02:00:00 UTC  node-1  volume:data  —      —

—: not recorded by restic before 0.17; `marina snapshots nightly volume:data --count` counts it (about a second per snapshot).

pre-restore: saved (marina:pre-restore) by an in-place restore just before it replaced the content; restoring it in place undoes that restore.
"
    );
    let json = marina()
        .args(["snapshots", "nightly", "volume:data", "--count", "--json"])
        .args(["--url", &format!("{}/", daemon.url)])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    assert_eq!(
        serde_json::from_slice::<Value>(&json.stdout).unwrap(),
        answer
    );
    let all = marina()
        .args(["snapshots", "nightly", "--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));

    let seen = daemon.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for request in &seen {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/api/instances/nightly/snapshots");
        assert_eq!(request.authorization, None, "no config, so no login");
    }
    assert_eq!(seen[0].query["target"], "volume:data");
    assert_eq!(seen[0].query["count"], "false");
    assert_eq!(seen[1].query["count"], "true");
    assert!(!seen[2].query.contains_key("target"), "{:?}", seen[2].query);
}

#[test]
fn the_daemons_refusal_is_printed_and_exits_1() {
    let daemon = StandIn::start(|_, _| {
        (
            404,
            json!({"error": "no instance `nightly` is configured on this node"}),
        )
    });
    for args in [
        &["snapshots", "nightly"][..],
        &["restore", "nightly", "volume:data", "--dry-run"],
    ] {
        let output = marina()
            .args(args)
            .args(["--url", &daemon.url])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&output),
            "marina: no instance `nightly` is configured on this node\n"
        );
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn an_answer_of_another_shape_says_the_versions_may_differ() {
    let daemon = StandIn::start(|_, _| (200, json!({"points": []})));
    let output = marina()
        .args(["snapshots", "nightly", "--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("answered in a form this command does not understand (the snapshot list: missing field `instance`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_dry_run_sends_the_request_and_prints_the_plan() {
    let daemon = StandIn::start(|request, _| {
        let conflicts: &[&str] = if request.body["to"] == "taken" {
            &["a volume named taken already exists; pick another name with --to"]
        } else {
            &[]
        };
        (200, plan(false, conflicts))
    });
    let output = marina()
        .args([
            "restore",
            "nightly",
            "volume:data",
            "--dry-run",
            "--snapshot",
            "1A2B3C4D",
        ])
        .args(["--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Restore of volume:data (instance nightly)
From snapshot 1a2b3c4d (2026-12-04 02:00:00 UTC, host node-1): 1234 files, 5.2 MiB
Into a new volume data-restore-20261204-102030; nothing that exists now is changed.

Steps:
  1. create volume  data-restore-20261204-102030
  2. restore files  data-restore-20261204-102030

Dry run: nothing was changed. Run the same command without --dry-run to restore.
"
    );
    let conflicted = marina()
        .args([
            "restore",
            "nightly",
            "volume:data",
            "--dry-run",
            "--to",
            "taken",
        ])
        .args(["--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(conflicted.status.code(), Some(1), "{}", stderr(&conflicted));
    assert!(
        stdout(&conflicted).contains(
            "Conflicts (the restore cannot run until they are resolved):\n  - a volume named taken already exists; pick another name with --to\n"
        ),
        "{}",
        stdout(&conflicted)
    );
    let json = marina()
        .args([
            "restore",
            "nightly",
            "volume:data",
            "--dry-run",
            "--json",
            "--in-place",
        ])
        .args(["--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    assert_eq!(
        serde_json::from_slice::<Value>(&json.stdout).unwrap(),
        plan(false, &[])
    );

    let seen = daemon.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.path == "/api/instances/nightly/restore")
    );
    assert_eq!(
        seen[0].body,
        json!({"target": "volume:data", "snapshot": "1a2b3c4d", "inPlace": false, "dryRun": true})
    );
    assert_eq!(
        seen[1].body,
        json!({"target": "volume:data", "snapshot": "latest", "to": "taken", "inPlace": false, "dryRun": true})
    );
    assert_eq!(
        seen[2].body,
        json!({"target": "volume:data", "snapshot": "latest", "inPlace": true, "dryRun": true})
    );
}

#[test]
fn a_plan_with_conflicts_is_refused_and_shown() {
    let daemon = StandIn::start(|_, _| {
        (
            409,
            json!({
                "error": "the restore of volume:data cannot run: 1 conflict",
                "plan": plan(true, &["container `worker` uses volume data and is not one Marina may stop"]),
            }),
        )
    });
    let output = marina()
        .args(["restore", "nightly", "volume:data", "--in-place"])
        .args(["--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output)
            .contains("  - container `worker` uses volume data and is not one Marina may stop\n"),
        "{}",
        stdout(&output)
    );
    assert!(!stdout(&output).contains("queued"), "{}", stdout(&output));
    assert_eq!(
        stderr(&output),
        "marina: the restore of volume:data cannot run: 1 conflict\n"
    );
    // A 409 without a plan (a restore of the instance already waits) is a plain refusal.
    let waiting = StandIn::start(|_, _| {
        (
            409,
            json!({"error": "a restore of `nightly` already waits; wait for it to finish"}),
        )
    });
    let output = marina()
        .args(["restore", "nightly", "volume:data", "--url", &waiting.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "marina: a restore of `nightly` already waits; wait for it to finish\n"
    );
}

#[test]
fn a_queued_restore_is_followed_to_its_end() {
    let daemon = queuing_daemon("success", None);
    let output = marina()
        .args(["restore", "nightly", "volume:data", "--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let tail = text
        .split_once("\nRestore of volume:data queued as job 12.\n")
        .unwrap_or_else(|| panic!("{text}"))
        .1;
    assert_eq!(
        tail,
        "Job 12 waits for its turn (another job of the instance may be running).
10:20:31 INFO  volume:data: Restore started.
10:20:31 INFO  volume:data: Restored 1234 files.
Job 12 ended: success.
"
    );
    assert!(
        text.starts_with("Restore of volume:data (instance nightly)\n"),
        "{text}"
    );
    let seen = daemon.seen();
    let jobs: Vec<&Seen> = seen.iter().filter(|s| s.path == "/api/jobs").collect();
    assert_eq!(jobs.len(), 3, "{seen:?}");
    assert_eq!(jobs[0].query["instanceId"], "nightly");
    let restore = &seen[0];
    assert_eq!(
        restore.body,
        json!({"target": "volume:data", "snapshot": "latest", "inPlace": false, "dryRun": false})
    );
}

#[test]
fn a_restore_that_fails_exits_1_with_its_message() {
    let daemon = queuing_daemon("failed", Some("the snapshot could not be read"));
    let output = marina()
        .args(["restore", "nightly", "volume:data", "--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).ends_with("Job 12 ended: failed (the snapshot could not be read).\n"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        stderr(&output),
        "marina: the restore of volume:data (job 12) ended failed; its log says why\n"
    );
}

#[test]
fn with_json_stdout_carries_only_the_queued_answer_and_the_final_job() {
    let daemon = queuing_daemon("success", None);
    let output = marina()
        .args([
            "restore",
            "nightly",
            "volume:data",
            "--json",
            "--url",
            &daemon.url,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&output));
    assert_eq!(lines[0]["jobId"], 12);
    assert_eq!(lines[0]["plan"], plan(false, &[]));
    assert_eq!(lines[1], job("success", None));
    assert!(stderr(&output).contains("INFO  volume:data: Restored 1234 files.\n"));
}

#[test]
fn no_wait_returns_once_queued() {
    let daemon = queuing_daemon("success", None);
    let output = marina()
        .args([
            "restore",
            "nightly",
            "volume:data",
            "--no-wait",
            "--url",
            &daemon.url,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).ends_with(
            "Restore of volume:data queued as job 12.\nFollow it in the dashboard or with `GET /api/logs/job/12`.\n"
        ),
        "{}",
        stdout(&output)
    );
    assert!(
        daemon
            .seen()
            .iter()
            .all(|s| s.path == "/api/instances/nightly/restore")
    );
}

#[test]
fn losing_the_job_says_the_restore_goes_on() {
    let daemon = StandIn::start(|request, _| match request.path.as_str() {
        "/api/instances/nightly/restore" => (
            202,
            json!({"jobId": 12, "iid": 3, "plan": plan(false, &[])}),
        ),
        _ => (
            500,
            json!({"error": "the job store could not answer; see Marina's log"}),
        ),
    });
    let output = marina()
        .args(["restore", "nightly", "volume:data", "--url", &daemon.url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "marina: the job store could not answer; see Marina's log; job 12 was queued and goes on without this command: follow it in the dashboard or with `GET /api/logs/job/12`\n"
    );
}

#[test]
fn the_config_says_where_the_daemon_is_and_its_password_logs_in() {
    let daemon = StandIn::start(|request, _| match request.path.as_str() {
        "/api/auth/login" => (200, json!({"success": true, "token": "a".repeat(64)})),
        _ => (
            200,
            json!({"instance": "nightly", "target": null, "snapshots": []}),
        ),
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "instances: []\nnodeName: n\napiBind: 0.0.0.0\napiPort: {}\nauthPassword: ${{AUTH}}\n",
            daemon.port
        ),
    )
    .unwrap();
    let output = marina()
        .args(["snapshots", "nightly", "--config"])
        .arg(&config)
        .env("AUTH", "correct-horse-battery-staple")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "No snapshots of nightly yet; the next backup makes one (`marina backup nightly` starts it now).\n"
    );
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains("correct-horse-battery-staple"));
    let seen = daemon.seen();
    assert_eq!(seen[0].path, "/api/auth/login");
    assert_eq!(
        seen[0].body,
        json!({"password": "correct-horse-battery-staple"})
    );
    assert!(
        seen[0].query.is_empty(),
        "the password goes in the body only"
    );
    assert_eq!(seen[1].path, "/api/instances/nightly/snapshots");
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some(format!("Bearer {}", "a".repeat(64)).as_str())
    );
}
