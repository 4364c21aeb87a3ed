//! `/metrics` of a real `marina run` after a real restic backup: the series operators alert
//! on, output that `promtool check metrics` accepts, and a real Prometheus server scraping
//! it. Needs the Docker engine, restic, and Debian's `prometheus` package (`promtool` and
//! `prometheus`), which `.ci/run` installs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::daemon::Daemon;
use support::require_engine_and_images;

const PASSWORD: &str = "e2e-metrics-password";
const INSTANCE: &str = "metered";

/// GETs `/metrics`, checking the content type of the classic text format.
async fn scrape(marina: &Daemon) -> String {
    let response = reqwest::get(format!("{}/metrics", marina.base_url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "text/plain; version=0.0.4");
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
}

/// Runs `promtool check metrics` on `text`; a missing promtool fails the test.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install Debian's prometheus package (.ci/run does)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n--- metrics ---\n{text}"
    );
}

/// A Prometheus server in a temp directory, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) every second.
    fn start(dir: &Path, target: &str) -> Self {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: marina\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = free_address();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start prometheus ({e}); install Debian's prometheus package (.ci/run does)"
                )
            });
        Self {
            child,
            url: format!("http://{address}"),
        }
    }

    /// The answer of an instant query (a bare metric name: nothing to URL-encode), `None`
    /// while the server is not up yet.
    async fn query(&self, metric: &str) -> Option<Value> {
        let url = format!("{}/api/v1/query?query={metric}", self.url);
        reqwest::get(url).await.ok()?.json().await.ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on right now.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Polls `/metrics` until the instance's last success shows: it comes from the snapshot
/// published after the job's end, a moment after the job store says the job is over.
async fn scrape_after_the_job(marina: &Daemon) -> String {
    let last_success =
        format!("marina_instance_last_success_timestamp_seconds{{instance=\"{INSTANCE}\"}}");
    for _ in 0..250 {
        let text = scrape(marina).await;
        if sample(&text, &last_success).is_some() {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {last_success} within 5s:\n{}", scrape(marina).await);
}

/// Checks the series one successful backup of `volume`, started at `before`, leaves.
fn check_backup_series(text: &str, volume: &str, before: i64) {
    // Every sample checked here is a whole number (counts, bytes, Unix seconds).
    let value = |series: String| {
        sample(text, &series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse::<i64>()
            .unwrap_or_else(|e| panic!("{series}: {e}"))
    };
    let of = |name: &str, labels: &str| format!("{name}{{instance=\"{INSTANCE}\"{labels}}}");
    assert_eq!(value(of("marina_jobs_total", ",status=\"success\"")), 1);
    assert_eq!(value(of("marina_jobs_total", ",status=\"failed\"")), 0);
    assert_eq!(value(of("marina_job_duration_seconds_count", "")), 1);
    let finished = value(of("marina_instance_last_success_timestamp_seconds", ""));
    assert!(
        finished >= before,
        "the last success ({finished}) is this backup's (started at {before})"
    );
    assert_eq!(value(of("marina_targets", ",kind=\"volume\"")), 1);
    assert_eq!(value(of("marina_targets", ",kind=\"db\"")), 0);
    let target = format!(",target=\"volume:{volume}\"");
    let target_success = value(of("marina_target_last_success_timestamp_seconds", &target));
    assert!((before..=finished).contains(&target_success));
    // 200 000 random bytes cannot be deduplicated or compressed away.
    assert!(value(of("marina_backup_bytes_added_total", "")) > 200_000);
    assert!(value(of("marina_staged_bytes_total", "")) >= 200_006);
    assert!(value(of("marina_instance_next_run_timestamp_seconds", "")) > finished);
    assert_eq!(value("marina_config_last_reload_successful".into()), 1);
    assert_eq!(value("marina_jobs_running".into()), 0);
    assert!(value("marina_reconcile_duration_seconds_count".into()) >= 1);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(format!("marina_build_info{{version=\"{version}\"}}")),
        1
    );
}

/// Starts a real Prometheus scraping `marina` every second and waits (30 s at most) until
/// its query API has the job counter.
async fn assert_prometheus_scrapes(marina: &Daemon) {
    let server_dir = tempfile::tempdir().unwrap();
    let target = marina.base_url.trim_start_matches("http://");
    let prometheus = Prometheus::start(server_dir.path(), target);
    let mut last = None;
    for _ in 0..60 {
        if let Some(answer) = prometheus.query("marina_jobs_total").await {
            // Prometheus's own target label `instance` wins over Marina's, which it keeps as
            // `exported_instance` (`honor_labels: true` would keep Marina's instead).
            let found = answer["data"]["result"].as_array().is_some_and(|series| {
                series.iter().any(|s| {
                    s["metric"]["exported_instance"] == INSTANCE
                        && s["metric"]["status"] == "success"
                        && s["metric"]["job"] == "marina"
                        && s["value"][1] == "1"
                })
            });
            if found {
                return;
            }
            last = Some(answer);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("Prometheus did not scrape marina_jobs_total within 30s; last answer: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_shows_in_metrics_that_promtool_accepts_and_prometheus_scrapes() {
    require_engine_and_images();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let (volume, _volume) = support::filled_volume(
        INSTANCE,
        "echo hello > /data/greeting; head -c 200000 /dev/urandom > /data/random.bin",
    );
    let marina = Daemon::start(&format!(
        "instances:\n  - id: {INSTANCE}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n",
        repo.display()
    ));
    marina.wait_ready().await;
    marina
        .wait_for("/api/targets", 10, "the labelled volume", |t| {
            t.to_string().contains(&volume)
        })
        .await;

    let before = marina::clock::now().timestamp();
    let id = marina.trigger(INSTANCE).await;
    let job = marina.wait_job(INSTANCE, id, 120).await;
    assert_eq!(job["status"], "success", "{:#?}", marina.job_log(id).await);

    let text = scrape_after_the_job(&marina).await;
    check_backup_series(&text, &volume, before);
    promtool_check(&text);
    assert_prometheus_scrapes(&marina).await;
}
