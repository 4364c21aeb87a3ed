//! `restic snapshots`: the instance's snapshots on this host, or on every host that shares
//! the repository (its restore points), and the tag filter that picks them out of a shared
//! repository (retention uses the same filter).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::backend::restic::process::{Capture, args};
use crate::backend::restic::{MARINA_TAG, Restic, Result};
use crate::model::TargetId;

/// One snapshot as `restic snapshots --json` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    /// The full snapshot id.
    pub id: String,
    /// The 8-character id restic prints.
    #[serde(default, rename(deserialize = "short_id"))]
    pub short_id: String,
    /// When the snapshot was taken.
    pub time: DateTime<Utc>,
    /// restic's `--host`: the node that made it.
    #[serde(default, rename(deserialize = "hostname"))]
    pub host: String,
    /// The backed-up paths (for a stream: `/` + the stdin file name).
    #[serde(default, deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
    /// The snapshot's tags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    /// The snapshot restic compared against (incremental backup), if any.
    #[serde(default)]
    pub parent: Option<String>,
    /// What the backup that made it counted; restic 0.17 and newer record it in the
    /// snapshot, older versions do not (see [`Restic::restore_size`]).
    #[serde(default)]
    pub summary: Option<SnapshotSummary>,
}

/// The part of a snapshot's recorded backup summary (restic ≥ 0.17) that says how much it
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSummary {
    /// Files the backup read.
    #[serde(rename(deserialize = "total_files_processed"))]
    pub files: u64,
    /// Bytes of those files.
    #[serde(rename(deserialize = "total_bytes_processed"))]
    pub bytes: u64,
}

fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl Restic {
    /// This instance's snapshots made on this host, oldest first; only those of `target`
    /// when given.
    pub async fn snapshots(&self, target: Option<&TargetId>) -> Result<Vec<SnapshotInfo>> {
        self.list(Some(&self.settings.host), target).await
    }

    /// This instance's snapshots made on any host that shares the repository, oldest first;
    /// only those of `target` when given. These are what a restore can start from.
    pub async fn restore_points(&self, target: Option<&TargetId>) -> Result<Vec<SnapshotInfo>> {
        self.list(None, target).await
    }

    /// `restic snapshots --json`, on `host` only when given.
    async fn list(
        &self,
        host: Option<&str>,
        target: Option<&TargetId>,
    ) -> Result<Vec<SnapshotInfo>> {
        let command = "snapshots";
        self.preflight(command)?;
        let mut arguments = args(["snapshots", "--json"]);
        if let Some(host) = host {
            arguments.extend(args(["--host", host]));
        }
        arguments.extend(args(["--tag", &self.instance_filter(target)]));
        let finished = self.run(command, &arguments, Capture::Text, None).await?;
        if !finished.status.success() {
            return Err(self.failed(command, &finished));
        }
        let stdout = self.complete_stdout(command, &finished)?;
        let mut snapshots: Vec<SnapshotInfo> = serde_json::from_slice(stdout)
            .map_err(|error| self.output_error(command, &error.to_string()))?;
        snapshots.sort_by_key(|snapshot| snapshot.time);
        Ok(snapshots)
    }

    /// `marina,instance:<id>[,<target>]`: one `--tag` value, which restic reads as "has all".
    pub(super) fn instance_filter(&self, target: Option<&TargetId>) -> String {
        let mut filter = format!("{MARINA_TAG},instance:{}", self.settings.instance);
        if let Some(target) = target {
            filter.push(',');
            filter.push_str(&target.to_string());
        }
        filter
    }
}
