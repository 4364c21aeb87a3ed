//! A real `marina run` process for black-box tests: started with a config in a temp
//! directory, its API address read from its own log, stopped (SIGTERM) when dropped.

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
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Writes `config` (which must not set `apiPort`/`apiBind`) and starts `marina run` on a
    /// free loopback port; returns once it listens.
    pub fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, with_api(config)).expect("write config");
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
            _dir: dir,
        }
    }

    /// The process id, to prove a reload happened in the same process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replaces the config the way editors do: write a temp file, rename it over.
    pub fn replace_config(&self, config: &str) {
        let temp = self.config_path.with_extension("yml.tmp");
        std::fs::write(&temp, with_api(config)).expect("write temp config");
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

fn with_api(config: &str) -> String {
    format!("{config}\napiBind: 127.0.0.1\napiPort: 0\n")
}
