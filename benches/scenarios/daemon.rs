//! A real `marina run` process (the release binary) for one scenario: its config and job
//! store in a temporary directory, its log in a file there, its API on a free loopback port,
//! its memory read from `/proc`. Dropping it stops it (SIGTERM, then SIGKILL).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{BUSYBOX, Stopwatch};

/// The release binary Cargo built for this benchmark.
const MARINA: &str = env!("CARGO_BIN_EXE_marina");

/// The binary to measure: `MARINA_BENCH_BINARY` when set (to compare another build, e.g. the
/// one before a change, under the same harness), else the one Cargo built.
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("MARINA_BENCH_BINARY").unwrap_or_else(|| MARINA.into())
}

/// The password of every restic repository the benchmark makes.
pub const RESTIC_PASSWORD: &str = "marina-bench";

/// A running Marina.
pub struct Marina {
    child: Child,
    /// Config, job store, staging, restic cache and log.
    dir: PathBuf,
    /// The config file it watches.
    config_path: PathBuf,
    /// `http://127.0.0.1:PORT`.
    base: String,
    port: u16,
    client: reqwest::Client,
}

/// Memory figures of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident set size now, in mebibytes.
    pub rss_mb: f64,
    /// The peak resident set size so far, in mebibytes.
    pub hwm_mb: f64,
}

impl Marina {
    /// Writes `config` (instances and settings; the API address, job store, staging and
    /// helper image are added) into `dir` and starts Marina on it. Returns at once; see
    /// [`Marina::wait_ready`].
    pub fn spawn(dir: &Path, config: &str) -> Self {
        let port = free_port();
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, with_settings(config, dir, port)).expect("writing config");
        let log = std::fs::File::create(dir.join("marina.log")).expect("creating the log file");
        // The restic cache goes under TMPDIR: inside the scenario's directory, removed with it.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("creating TMPDIR");
        let child = Command::new(binary())
            .args(["run", "--config"])
            .arg(&config_path)
            .env("MARINA_LOG", "marina=debug,info")
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A file, not a pipe: a reader falling behind must never slow Marina down.
            .stderr(log)
            .spawn()
            .expect("starting marina");
        Self {
            child,
            dir: dir.to_path_buf(),
            config_path,
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .timeout(Duration::from_mins(1))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Polls `/readyz` until it answers 200; panics with the log's tail after `limit`.
    pub async fn wait_ready(&self, limit: Duration) {
        let watch = Stopwatch::start();
        let url = format!("{}/readyz", self.base);
        while watch.elapsed() < limit {
            if self
                .client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!(
            "marina did not become ready within {limit:?}; its log ends with:\n{}",
            self.log_tail(40)
        );
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Current and peak resident memory of the process.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading /proc/PID/status of marina");
        let field = |name: &str| -> f64 {
            let kib: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"));
            kib / 1024.0
        };
        Memory {
            rss_mb: field("VmRSS:"),
            hwm_mb: field("VmHWM:"),
        }
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        response
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    /// Asks for a backup of `instance` now; returns the job id.
    pub async fn trigger(&self, instance: &str) -> i64 {
        let url = format!("{}/api/instances/{instance}/backup", self.base);
        let response = self
            .client
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status.as_u16(), 202, "triggering {instance}: {answer}");
        answer["jobId"].as_i64().expect("a jobId")
    }

    /// Waits (at most `limit`) until job `id` of `instance` is over; returns its `/api/status`
    /// entry. Polls four times a second: the job's times are Marina's own records, so polling
    /// faster would only take CPU from the job being measured.
    pub async fn wait_job(&self, instance: &str, id: i64, limit: Duration) -> Value {
        let watch = Stopwatch::start();
        loop {
            let jobs = self.get(&format!("/api/status/{instance}")).await;
            if let Some(job) = jobs
                .as_array()
                .and_then(|all| all.iter().find(|j| j["id"] == id))
                && job["isActive"] == false
            {
                return job.clone();
            }
            assert!(
                watch.elapsed() < limit,
                "job {id} of {instance} did not finish within {limit:?}; log tail:\n{}",
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs a backup of `instance` to its end, insisting that it succeeded; returns the job's
    /// id and its duration as Marina recorded it (`lastStartedAt` → `lastCompletedAt`).
    pub async fn backup(&self, instance: &str, limit: Duration) -> (i64, Duration) {
        let id = self.trigger(instance).await;
        let job = self.wait_job(instance, id, limit).await;
        assert_eq!(
            job["status"],
            "success",
            "job {id} of {instance} did not succeed: {job}\nits log:\n{}",
            self.job_log_text(id).await
        );
        (id, job_duration(&job))
    }

    /// Every line of job `id`'s log, oldest first, paging with `afterId`.
    pub async fn job_log(&self, id: i64) -> Vec<Value> {
        let mut lines: Vec<Value> = Vec::new();
        let mut after = 0_i64;
        loop {
            let page = self
                .get(&format!("/api/logs/job/{id}?afterId={after}&limit=10000"))
                .await;
            let page = page.as_array().cloned().unwrap_or_default();
            let Some(last) = page.last() else {
                return lines;
            };
            after = last["id"].as_i64().expect("a log line id");
            lines.extend(page);
        }
    }

    /// How job `id` spent its time, from its log's timestamps: from its first line to the
    /// first line starting with each of `markers` in turn, then to its last line; e.g.
    /// `4.20 + 0.70 + 0.00 s`.
    pub async fn job_steps(&self, id: i64, markers: &[&str]) -> String {
        let log = self.job_log(id).await;
        let time = |line: &Value| {
            chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap_or(""))
                .expect("log timestamps are RFC 3339")
        };
        let mut times = vec![time(log.first().expect("a job log"))];
        for marker in markers {
            let line = log
                .iter()
                .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(marker)))
                .unwrap_or_else(|| panic!("job {id} logged no `{marker}`: {log:?}"));
            times.push(time(line));
        }
        times.push(time(log.last().expect("a job log")));
        let steps: Vec<String> = times
            .windows(2)
            .map(|pair| format!("{:.2}", (pair[1] - pair[0]).as_seconds_f64()))
            .collect();
        format!("{} s", steps.join(" + "))
    }

    async fn job_log_text(&self, id: i64) -> String {
        self.job_log(id)
            .await
            .iter()
            .fold(String::new(), |mut text, line| {
                let _ = writeln!(
                    text,
                    "  {} {}",
                    line["level"].as_str().unwrap_or(""),
                    line["message"].as_str().unwrap_or("")
                );
                text
            })
    }

    /// Replaces the config the way editors do: a temporary file renamed over it. Returns
    /// when the rename has returned.
    pub fn replace_config(&self, config: &str) {
        let temp = self.config_path.with_extension("yml.tmp");
        std::fs::write(&temp, with_settings(config, &self.dir, self.port))
            .expect("writing the new config");
        std::fs::rename(&temp, &self.config_path).expect("renaming the new config");
    }

    /// The last `n` lines of Marina's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("marina.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops Marina and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Marina {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The duration of a job as Marina recorded it: `lastStartedAt` → `lastCompletedAt`.
pub fn job_duration(job: &Value) -> Duration {
    let time = |field: &str| {
        let text = job[field]
            .as_str()
            .unwrap_or_else(|| panic!("job without {field}: {job}"));
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{field} `{text}` is not RFC 3339: {e}"))
    };
    (time("lastCompletedAt") - time("lastStartedAt"))
        .to_std()
        .expect("a job that ends after it starts")
}

/// A TCP port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").port()
}

/// `config` plus what every benchmark daemon needs.
fn with_settings(config: &str, dir: &Path, port: u16) -> String {
    format!(
        "{config}\nnodeName: bench-node\napiBind: 127.0.0.1\napiPort: {port}\nshutdownGrace: 10s\ndbPath: {}\nstagingDir: {}\nhelperImage: {BUSYBOX}\n",
        dir.join("marina.db").display(),
        dir.join("staging").display(),
    )
}

/// One restic instance's config entry, scheduled far away (only triggered by hand).
pub fn restic_instance(id: &str, repository: &Path, schedule: &str) -> String {
    format!(
        "  - id: {id}\n    repository: {}\n    schedule: \"{schedule}\"\n    env:\n      RESTIC_PASSWORD: {RESTIC_PASSWORD}\n",
        repository.display()
    )
}

/// Runs restic on `repository` with the benchmark password (and no cache unless `args` name
/// one, so nothing is left in `~/.cache`); panics if it fails.
pub fn restic(repository: &Path, args: &[&str]) -> std::process::Output {
    let cache: &[&str] = if args.contains(&"--cache-dir") {
        &[]
    } else {
        &["--no-cache"]
    };
    let output = Command::new("restic")
        .arg("--repo")
        .arg(repository)
        .args(cache)
        .args(args)
        .env("RESTIC_PASSWORD", RESTIC_PASSWORD)
        .output()
        .expect("running restic");
    assert!(
        output.status.success(),
        "restic {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
