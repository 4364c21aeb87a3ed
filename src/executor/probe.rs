//! Finding a database container's kind from the dump tools inside it, when neither the
//! config, a label nor the image's name tells (a private image such as `myorg/db:1`, or a
//! bare `sha256:` id).
//!
//! The probe is one short `docker exec` per container, run when the controller first sees
//! the container running (an [`Order::Probe`](crate::reconcile::Order::Probe)) and
//! remembered by container id (a recreated container is probed again), so it never runs on
//! the event watch and never more than once for a container. A job that starts before the
//! answer arrives probes here itself, through the same memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::info;

use crate::docker::{ExecSpec, OutputLine, OutputStream, Runtime};
use crate::model::{DbKind, PROBED_TOOLS, ProbeResult};

/// How long the probe may take: `command -v` answers at once, so a container that does not
/// answer in this time is not going to be dumped either.
const PROBE_DEADLINE: Duration = Duration::from_secs(20);

/// Probe results by container id, shared by every job of one executor.
#[derive(Debug, Clone, Default)]
pub struct DbProbes(Arc<Mutex<HashMap<String, ProbeResult>>>);

impl DbProbes {
    fn get(&self, container_id: &str) -> Option<ProbeResult> {
        self.0
            .lock()
            .ok()
            .and_then(|probes| probes.get(container_id).cloned())
    }

    fn put(&self, container_id: &str, result: ProbeResult) {
        if let Ok(mut probes) = self.0.lock() {
            probes.insert(container_id.to_owned(), result);
        }
    }
}

/// The shell script run in the container: prints each dump tool it has, one per line. It
/// only names tools (no secrets on the command line) and always exits 0.
fn probe_script() -> String {
    let mut script = String::from("for tool in");
    for tool in PROBED_TOOLS {
        script.push(' ');
        script.push_str(tool);
    }
    script.push_str("; do command -v \"$tool\" >/dev/null 2>&1 && echo \"$tool\"; done; true");
    script
}

/// The database kind of container `id` (`name` for messages), found from its dump tools;
/// probes at most once per container id.
///
/// # Errors
/// A message for the target when the probe cannot run or finds no single engine's tools;
/// it tells the operator to set `dbKind`.
pub async fn db_kind<R: Runtime>(
    runtime: &R,
    probes: &DbProbes,
    id: &str,
    name: &str,
) -> Result<DbKind, String> {
    let result = match probes.get(id) {
        Some(result) => result,
        None => look(runtime, probes, id, name).await?,
    };
    match result {
        Ok((kind, tool)) => {
            info!(container = name, kind = %kind, tool, "The image does not name a database: kind {kind}, found {tool} in the container.");
            Ok(kind)
        }
        Err(e) => Err(e.for_container(name)),
    }
}

/// Looks for the dump tools in container `id` (`name` for messages) now, and remembers what
/// they tell for the jobs that follow.
///
/// # Errors
/// A message for the target when the tools cannot be looked for (the exec fails, times out
/// or exits non-zero); that is not remembered here, so a job that probes itself tries again.
pub async fn look<R: Runtime>(
    runtime: &R,
    probes: &DbProbes,
    id: &str,
    name: &str,
) -> Result<ProbeResult, String> {
    let result = probe(runtime, id, name).await?;
    probes.put(id, result.clone());
    Ok(result)
}

async fn probe<R: Runtime>(runtime: &R, id: &str, name: &str) -> Result<ProbeResult, String> {
    let spec = ExecSpec::new(id, vec!["sh".into(), "-c".into(), probe_script()]);
    let mut found: Vec<String> = Vec::new();
    let run = runtime.exec_capture(spec, |line: OutputLine| {
        let tool = line.text.trim();
        if line.stream == OutputStream::Stdout && PROBED_TOOLS.contains(&tool) {
            found.push(tool.to_owned());
        }
    });
    let code = match tokio::time::timeout(PROBE_DEADLINE, run).await {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            return Err(format!(
                "cannot look for dump tools in {name} to tell its database kind: {e}; set dbKind (config) or dev.polarfox.marina.db (label)"
            ));
        }
        Err(_) => {
            return Err(format!(
                "looking for dump tools in {name} took longer than {}s; set dbKind (config) or dev.polarfox.marina.db (label)",
                PROBE_DEADLINE.as_secs()
            ));
        }
    };
    if code != 0 {
        return Err(format!(
            "looking for dump tools in {name} failed (exit code {code}; does the container have sh?); set dbKind (config) or dev.polarfox.marina.db (label)"
        ));
    }
    let tools: Vec<&str> = found.iter().map(String::as_str).collect();
    Ok(DbKind::from_tools(&tools).map(|(kind, tool)| (kind, tool.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_names_every_tool_and_always_succeeds() {
        assert_eq!(
            probe_script(),
            "for tool in pg_dumpall mariadb-dump mysqldump mongodump redis-cli; do command -v \"$tool\" >/dev/null 2>&1 && echo \"$tool\"; done; true"
        );
    }
}
