//! A real `marina run` process for black-box tests: started with a config in a temp
//! directory, its API address read from its own log, stopped (SIGTERM) when dropped.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::api::Api;

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// The config file it watches.
    pub config_path: PathBuf,
    /// Its API (the struct derefs to it).
    api: Api,
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

    /// Like [`Daemon::start`], with extra variables in Marina's environment.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn(tempfile::tempdir().expect("temp dir"), config, env)
    }

    /// Like [`Daemon::start`], in a directory the test prepared (e.g. to restart Marina on
    /// the same job store).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Self {
        Self::spawn(dir, config, &[])
    }

    fn spawn(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Self {
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, with_api(config, dir.path())).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_marina"))
            .args(["run", "--config"])
            .arg(&config_path)
            .envs(env.iter().copied())
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
            api: Api::new(format!("http://{address}")),
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

impl std::ops::Deref for Daemon {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Api {
        &mut self.api
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
