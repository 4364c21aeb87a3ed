//! A real `marina run` process for black-box tests: started with a config in a temp
//! directory, its API address read from its own log, stopped (SIGTERM) when dropped.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The config file it watches.
    pub config_path: PathBuf,
    /// Log lines after start-up, as they arrive.
    pub logs: mpsc::Receiver<String>,
    /// The test's directory (config, job store, staging); `None` once taken back.
    dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Writes `config` (which must not set `apiPort`/`apiBind`) and starts `marina run` on a
    /// free loopback port; returns once it listens.
    pub fn start(config: &str) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), config)
    }

    /// Like [`Daemon::start`], in a directory the test prepared (e.g. to restart Marina on
    /// the same job store).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Self {
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, with_api(config, dir.path())).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_marina"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env("MARINA_LOG", "marina=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start marina");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("marina: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let address = loop {
            let line = logs
                .recv_timeout(Duration::from_secs(20))
                .expect("marina did not report its listening address");
            if let Some(rest) = line.split("HTTP API listening.").nth(1) {
                let address = rest
                    .split("address=")
                    .nth(1)
                    .expect("address field")
                    .trim()
                    .to_owned();
                break address;
            }
        };
        Self {
            child,
            base_url: format!("http://{address}"),
            config_path,
            logs,
            dir: Some(dir),
        }
    }

    /// The process id, to prove a reload happened in the same process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replaces the config the way editors do: write a temp file, rename it over.
    pub fn replace_config(&self, config: &str) {
        let temp = self.config_path.with_extension("yml.tmp");
        std::fs::write(&temp, with_api(config, self.dir())).expect("write temp config");
        std::fs::rename(&temp, &self.config_path).expect("rename config");
    }

    /// The directory holding the config.
    pub fn dir(&self) -> &Path {
        self.config_path.parent().expect("config dir")
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.base_url);
        let response = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        response
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    /// Polls `path` until `check` accepts the answer; fails after `seconds`.
    pub async fn wait_for(
        &self,
        path: &str,
        seconds: u64,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let attempts = seconds * 50;
        for _ in 0..attempts {
            let answer = self.get(path).await;
            if check(&answer) {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{what}: not seen in {path} within {seconds}s; last answer: {}",
            self.get(path).await
        );
    }

    /// Waits until `/readyz` says ready.
    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.base_url);
        for _ in 0..500 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("marina did not become ready within 10s");
    }
}

impl Daemon {
    /// Kills Marina with SIGKILL (no clean-up at all, like a crash) and hands back its
    /// directory so a new Marina can start on the same job store.
    pub fn crash(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("the directory is still there")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds what every test daemon needs: a free loopback port, and (unless the config sets
/// them) its job store and staging in the test's own directory and the local helper image.
fn with_api(config: &str, dir: &Path) -> String {
    let mut text = format!("{config}\napiBind: 127.0.0.1\napiPort: 0\n");
    let has = |key: &str| config.lines().any(|l| l.starts_with(&format!("{key}:")));
    if !has("dbPath") {
        let _ = writeln!(text, "dbPath: {}", dir.join("marina.db").display());
    }
    if !has("stagingDir") {
        let _ = writeln!(text, "stagingDir: {}", dir.join("staging").display());
    }
    if !has("helperImage") {
        text.push_str("helperImage: marina-test/busybox:latest\n");
    }
    text
}

impl Daemon {
    /// POSTs to `path`; returns the status code and the JSON answer.
    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base_url);
        let response = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Triggers a backup of `instance` and returns the job id.
    pub async fn trigger(&self, instance: &str) -> i64 {
        let (status, answer) = self
            .post(&format!("/api/instances/{instance}/backup"))
            .await;
        assert_eq!(status, 202, "triggering {instance}: {answer}");
        answer["jobId"].as_i64().expect("jobId")
    }

    /// Waits until job `id` of `instance` reaches a final status and returns the job entry.
    pub async fn wait_job(&self, instance: &str, id: i64, seconds: u64) -> serde_json::Value {
        let path = format!("/api/status/{instance}");
        let answer = self
            .wait_for(&path, seconds, &format!("job {id} to finish"), |jobs| {
                jobs.as_array()
                    .is_some_and(|all| all.iter().any(|j| j["id"] == id && j["isActive"] == false))
            })
            .await;
        answer
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap()
            .clone()
    }

    /// The log lines of job `id`, as `level message` strings.
    pub async fn job_log(&self, id: i64) -> Vec<String> {
        let logs = self.get(&format!("/api/logs/job/{id}")).await;
        logs.as_array()
            .expect("log lines")
            .iter()
            .map(|l| {
                format!(
                    "{} {}",
                    l["level"].as_str().unwrap_or(""),
                    l["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}
