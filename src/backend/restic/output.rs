//! Reading the `backup --json` message stream as restic prints it: its summary, and the items
//! it could not read.

use std::io;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStdout;

use crate::backend::BackupSummary;

/// Unreadable items named in an [`ResticError::Incomplete`](super::ResticError::Incomplete)
/// message; the rest are counted.
const REPORTED_ITEMS: usize = 5;

/// The parts of `backup --json` output Marina keeps.
#[derive(Debug, Default)]
pub(super) struct BackupStream {
    /// The final `summary` message.
    pub(super) summary: Option<JsonSummary>,
    /// The first few `error` messages, described (not yet scrubbed).
    pub(super) errors: Vec<String>,
    /// How many `error` messages there were.
    pub(super) error_count: usize,
}

/// One line of `restic backup --json`.
#[derive(Debug, Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
pub(super) enum BackupMessage {
    Summary(JsonSummary),
    Error(JsonError),
    /// `status` (progress) and `verbose_status` lines.
    #[serde(other)]
    Other,
}

/// restic's `summary` message (restic 0.14 field names).
#[derive(Debug, Deserialize)]
pub(super) struct JsonSummary {
    #[serde(default)]
    pub(super) files_new: u64,
    #[serde(default)]
    pub(super) files_changed: u64,
    #[serde(default)]
    pub(super) files_unmodified: u64,
    #[serde(default)]
    pub(super) dirs_new: u64,
    #[serde(default)]
    pub(super) dirs_changed: u64,
    #[serde(default)]
    pub(super) dirs_unmodified: u64,
    #[serde(default)]
    pub(super) data_added: u64,
    #[serde(default)]
    pub(super) total_files_processed: u64,
    #[serde(default)]
    pub(super) total_bytes_processed: u64,
    #[serde(default)]
    pub(super) total_duration: f64,
    #[serde(default)]
    pub(super) snapshot_id: Option<String>,
}

impl JsonSummary {
    pub(super) fn to_summary(&self) -> BackupSummary {
        BackupSummary {
            snapshot_id: self.snapshot_id.clone(),
            files_new: self.files_new,
            files_changed: self.files_changed,
            files_unmodified: self.files_unmodified,
            dirs_new: self.dirs_new,
            dirs_changed: self.dirs_changed,
            dirs_unmodified: self.dirs_unmodified,
            bytes_added: self.data_added,
            files_processed: self.total_files_processed,
            bytes_processed: self.total_bytes_processed,
            duration: Duration::try_from_secs_f64(self.total_duration).unwrap_or_default(),
        }
    }
}

/// restic's `error` message. restic 0.14 serialises the Go error as an object that often
/// carries only `Op`, so the item and the phase are the useful parts.
#[derive(Debug, Deserialize)]
pub(super) struct JsonError {
    #[serde(default)]
    pub(super) error: serde_json::Value,
    #[serde(default)]
    pub(super) during: String,
    #[serde(default)]
    pub(super) item: String,
}

impl JsonError {
    pub(super) fn describe(&self) -> String {
        let what = match &self.error {
            serde_json::Value::String(message) => message.clone(),
            serde_json::Value::Object(fields) => fields
                .get("Op")
                .and_then(serde_json::Value::as_str)
                .map_or_else(|| "error".to_owned(), |op| format!("{op} failed")),
            _ => "error".to_owned(),
        };
        format!("{} ({} during {})", self.item, what, self.during)
    }
}

pub(super) async fn read_backup_stream(pipe: ChildStdout) -> io::Result<BackupStream> {
    let mut reader = BufReader::new(pipe);
    let mut stream = BackupStream::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(stream);
        }
        // Lines that are not JSON (none are expected) are ignored rather than fatal.
        match serde_json::from_slice::<BackupMessage>(&line) {
            Ok(BackupMessage::Summary(summary)) => stream.summary = Some(summary),
            Ok(BackupMessage::Error(error)) => {
                stream.error_count += 1;
                if stream.errors.len() < REPORTED_ITEMS {
                    stream.errors.push(error.describe());
                }
            }
            Ok(BackupMessage::Other) | Err(_) => {}
        }
    }
}
