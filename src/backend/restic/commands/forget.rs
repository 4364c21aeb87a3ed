//! Retention: `restic forget --prune` with the instance's rules, grouped by host and tags so
//! each target keeps its own set, and the counts read from its report.

use std::fmt;

use serde::Deserialize;

use crate::backend::restic::process::{Capture, Finished, args};
use crate::backend::restic::{Restic, Result};

/// What one `forget --prune` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForgetSummary {
    /// Snapshot groups (one per host and tag set, i.e. one per target).
    pub groups: usize,
    /// Snapshots kept by the retention rules.
    pub kept: usize,
    /// Snapshots removed.
    pub removed: usize,
}

impl fmt::Display for ForgetSummary {
    /// `removed 4 snapshots, kept 2 (2 groups)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} snapshots, kept {} ({} groups)",
            self.removed, self.kept, self.groups
        )
    }
}

impl Restic {
    /// Applies the instance's retention: `forget --prune`, grouped by host and tags so each
    /// target keeps its own set, restricted to this instance's snapshots on this host.
    pub async fn forget_prune(&self) -> Result<ForgetSummary> {
        let finished = self.run_forget_prune().await?;
        self.forget_result(&finished)
    }

    /// Runs `restic forget --prune` with the instance's retention; the caller reads the result.
    pub(in crate::backend::restic) async fn run_forget_prune(&self) -> Result<Finished> {
        let command = "forget --prune";
        self.preflight(command)?;
        let retention = self.settings.retention;
        let rules: Vec<(&str, u32)> = [
            ("--keep-daily", retention.keep_daily),
            ("--keep-weekly", retention.keep_weekly),
            ("--keep-monthly", retention.keep_monthly),
            ("--keep-yearly", retention.keep_yearly),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect();
        if rules.is_empty() {
            return Err(self.invalid(
                command,
                "the retention keeps no snapshot at all; refusing to forget every snapshot"
                    .to_owned(),
            ));
        }
        let mut arguments = args([
            "forget",
            "--prune",
            "--json",
            "--group-by",
            "host,tags",
            "--host",
            &self.settings.host,
            "--tag",
            &self.instance_filter(None),
        ]);
        for (flag, count) in rules {
            arguments.push(flag.into());
            arguments.push(count.to_string().into());
        }
        self.run(command, &arguments, Capture::Text, None).await
    }

    /// What a finished `forget --prune` did, or the error it ended with.
    pub(in crate::backend::restic) fn forget_result(
        &self,
        finished: &Finished,
    ) -> Result<ForgetSummary> {
        let command = "forget --prune";
        if !finished.status.success() {
            return Err(self.failed(command, finished));
        }
        let stdout = self.complete_stdout(command, finished)?;
        parse_forget(stdout).map_err(|detail| self.output_error(command, &detail))
    }
}

/// One group of `forget --json` output; only the counts matter here.
#[derive(Debug, Deserialize)]
struct ForgetGroup {
    #[serde(default)]
    keep: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    remove: Option<Vec<serde::de::IgnoredAny>>,
}

/// Counts from `forget --prune --json` output: the JSON array comes first, prune's text report
/// after it; no output at all means no snapshot matched.
fn parse_forget(stdout: &[u8]) -> std::result::Result<ForgetSummary, String> {
    let Some(start) = stdout.iter().position(|&byte| byte == b'[') else {
        return if stdout.iter().all(u8::is_ascii_whitespace) {
            Ok(ForgetSummary::default())
        } else {
            Err("no JSON array in the output".to_owned())
        };
    };
    let groups: Vec<ForgetGroup> = serde_json::Deserializer::from_slice(&stdout[start..])
        .into_iter()
        .next()
        .unwrap_or_else(|| Ok(Vec::new()))
        .map_err(|error| error.to_string())?;
    Ok(ForgetSummary {
        groups: groups.len(),
        kept: groups
            .iter()
            .map(|g| g.keep.as_ref().map_or(0, Vec::len))
            .sum(),
        removed: groups
            .iter()
            .map(|g| g.remove.as_ref().map_or(0, Vec::len))
            .sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::{ForgetSummary, parse_forget};

    #[test]
    fn forget_output_is_read_up_to_the_prune_report() {
        let stdout = br#"[{"tags":["instance:i1","marina","volume:b"],"host":"n1","paths":null,"keep":[{"id":"a"}],"remove":[{"id":"b"},{"id":"c"}],"reasons":[]},{"tags":["instance:i1","marina","volume:a"],"host":"n1","paths":null,"keep":[{"id":"d"}],"remove":null,"reasons":[]}]
loading indexes...
[0:00] 100.00%  7 / 7 snapshots
done
"#;
        assert_eq!(
            parse_forget(stdout).unwrap(),
            ForgetSummary {
                groups: 2,
                kept: 2,
                removed: 2
            }
        );
        assert_eq!(parse_forget(b"").unwrap(), ForgetSummary::default());
        assert!(parse_forget(b"garbage").is_err());
    }
}
