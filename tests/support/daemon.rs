//! A real `marina run` process for black-box tests: started with a config in a temp
//! directory, its API address read from its own log, stopped (SIGTERM) when dropped.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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

    /// Like [`Daemon::start`], in a directory the test prepared (e.g. to restart Marina on
    /// the same job store).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Self {
        Self::start_in_with_env(dir, config, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables for the `marina` process.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Self {
        Self::start_in_with_env(tempfile::tempdir().expect("temp dir"), config, env)
    }

    /// Like [`Daemon::start_in`], with extra environment variables for the `marina` process.
    pub fn start_in_with_env(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Self {
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, with_api(config, dir.path())).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_marina"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env("MARINA_LOG", "marina=debug,info")
            .envs(env.iter().copied())
            // Its own process group, as a shell gives a foreground job: a signal to the group
            // (a terminal's Ctrl-C) reaches Marina and whatever it did not move out of it.
            .process_group(0)
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
    /// Sends `signal` (`TERM`, `INT`, …) to Marina alone.
    pub fn signal(&self, signal: &str) {
        send_signal(signal, &self.child.id().to_string());
    }

    /// Sends `signal` to Marina's whole process group, as a terminal's Ctrl-C does.
    pub fn signal_group(&self, signal: &str) {
        send_signal(signal, &format!("-{}", self.child.id()));
    }

    /// Waits up to `seconds` for Marina to exit; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self, seconds: u64) -> Option<ExitStatus> {
        for _ in 0..seconds * 20 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Hands back the directory of a Marina that has exited (it is killed if it has not), so
    /// a new Marina can start on the same job store.
    pub fn exited(mut self) -> tempfile::TempDir {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.dir.take().expect("the directory is still there")
    }

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
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
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

fn send_signal(signal: &str, target: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {target} failed");
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
