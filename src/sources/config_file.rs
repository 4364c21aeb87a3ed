//! The config file source: turns changes of `config.yml` into [`Message::ConfigLoaded`] or
//! [`Message::ConfigRejected`]. It translates only; the reconciler decides what changes.
//!
//! It watches the file's *directory*, so it sees editors that write a temporary file and
//! rename it over the config, and Kubernetes/Swarm mounts that swap a `..data` symlink.
//! Events are debounced, the file is re-read and compared by bytes (notify also reports
//! Marina's own reads), `SIGHUP` forces a reload, and a slow periodic re-read covers file
//! systems without inotify.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::EventKind;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Diagnostic, Environment, Severity, load_str};
use crate::metrics::{ConfigRejected, ConfigReloaded, Metrics};
use crate::reconcile::Message;

/// Quiet time after the last file event before the file is read: long enough for an editor
/// to finish its write-and-rename, short enough for a change to apply well within a second.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The safety-net re-read interval.
const REREAD: Duration = Duration::from_secs(30);

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// notify could not watch the directory.
    #[error("cannot watch {dir} for config changes: {source}")]
    Notify {
        /// The directory.
        dir: PathBuf,
        /// notify's error.
        source: notify::Error,
    },
    /// The SIGHUP handler could not be installed.
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(std::io::Error),
}

/// Watches `path` until `shutdown`; `current` is the content already loaded, so an
/// unchanged file is not reloaded. Reloads are counted in `metrics`.
pub async fn watch(
    path: PathBuf,
    env: Arc<dyn Environment + Send + Sync>,
    inbox: mpsc::Sender<Message>,
    current: Vec<u8>,
    shutdown: CancellationToken,
    metrics: Metrics,
) -> Result<(), WatchError> {
    let dir = directory_of(&path).to_path_buf();
    let file_name = path
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    let (changed_tx, mut changed) = mpsc::unbounded_channel::<()>();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let relevant = events.iter().any(|event| {
                !matches!(event.kind, EventKind::Access(_))
                    && event.paths.iter().any(|p| {
                        let name = p.file_name();
                        name == Some(file_name.as_os_str()) || name == Some(OsStr::new("..data"))
                    })
            });
            if relevant {
                let _ = changed_tx.send(());
            }
        }
        Err(errors) => {
            for e in errors {
                warn!(error = %e, "Config file watch reported an error.");
            }
        }
    };
    let mut debouncer =
        new_debouncer(DEBOUNCE, None, handler).map_err(|source| WatchError::Notify {
            dir: dir.clone(),
            source,
        })?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Notify {
            dir: dir.clone(),
            source,
        })?;
    let mut hangup = signal(SignalKind::hangup()).map_err(WatchError::Signal)?;
    let mut reread = tokio::time::interval(REREAD);
    reread.tick().await;

    let mut loader = Loader {
        path,
        env,
        inbox,
        current,
        metrics,
    };
    loop {
        let force = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(()) = changed.recv() => false,
            Some(()) = hangup.recv() => {
                info!("SIGHUP received; reloading the config.");
                true
            }
            _ = reread.tick() => false,
        };
        if !loader.reload(force).await {
            break;
        }
    }
    drop(debouncer);
    Ok(())
}

/// Reads the file and reports what it found.
struct Loader {
    path: PathBuf,
    env: Arc<dyn Environment + Send + Sync>,
    inbox: mpsc::Sender<Message>,
    /// The bytes of the last file read, valid or not.
    current: Vec<u8>,
    /// Where reloads are counted.
    metrics: Metrics,
}

impl Loader {
    /// Re-reads the file; `force` reloads it even when unchanged. Returns `false` when the
    /// reconciler is gone.
    async fn reload(&mut self, force: bool) -> bool {
        let file = self.path.display().to_string();
        let message = match tokio::fs::read(&self.path).await {
            Ok(bytes) if !force && bytes == self.current => return true,
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.current = bytes;
                match load_str(&text, &file, self.env.as_ref()) {
                    Ok(loaded) => {
                        self.metrics.emit(ConfigReloaded {
                            file: &file,
                            instances: loaded.config.instances.len(),
                        });
                        Message::ConfigLoaded {
                            config: Arc::new(loaded.config),
                            warnings: loaded.warnings,
                        }
                    }
                    Err(e) => self.rejected(e.diagnostics),
                }
            }
            Err(e) => {
                // Forget the old bytes: once the file is back, it is read even if unchanged.
                self.current.clear();
                self.rejected(vec![Diagnostic {
                    severity: Severity::Error,
                    file,
                    position: None,
                    path: String::new(),
                    message: format!("cannot read the config file: {e}"),
                }])
            }
        };
        self.inbox.send(message).await.is_ok()
    }

    fn rejected(&self, diagnostics: Vec<Diagnostic>) -> Message {
        self.metrics.emit(ConfigRejected {
            diagnostics: &diagnostics,
        });
        Message::ConfigRejected { diagnostics }
    }
}

/// The directory holding the config file (watched instead of the file itself).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
