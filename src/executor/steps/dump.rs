//! A database target's dump: started in its container (looked up again if it was recreated),
//! bounded by `resticTimeout` and the job's cancellation, and either handed on as a stream or
//! written to a file — never through memory, never inside the database container.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use super::db_container::DbContainer;
use crate::docker::dump::{DumpError, DumpStream, dump_within};
use crate::docker::{Deadline, ExecLimits, Runtime, RuntimeError, interruption};
use crate::executor::context::{Done, JobContext};
use crate::model::DbKind;

/// Starts the dump of `db` bounded by `resticTimeout` and the job's cancellation; a container
/// recreated under the dump's feet is looked up again once.
pub(crate) async fn start_dump<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    db: &DbContainer,
    kind: DbKind,
    dump_args: &[String],
) -> Result<DumpStream, String> {
    let limits = ExecLimits::new(
        Deadline::after(ctx.instance.dump_timeout, "resticTimeout"),
        ctx.cancel.clone(),
    );
    let mut looked_again = false;
    loop {
        let id = db.current(ctx).await?;
        match dump_within(&*ctx.runtime, &id, kind, dump_args, &limits).await {
            Err(DumpError::Runtime(RuntimeError::NoSuchContainer { .. })) if !looked_again => {
                looked_again = true;
            }
            result => return result.map_err(|e| e.to_string()),
        }
    }
}

/// Streams a dump into its file in the staging layout (never through memory, never inside
/// the database container).
pub(crate) async fn dump_to_file<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    db: &DbContainer,
    kind: DbKind,
    dump_args: &[String],
    file: &Path,
) -> Result<Done, String> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut stream = start_dump(ctx, db, kind, dump_args).await?;
    let tool = stream.tool();
    let container_name = db.name();
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
    tokio::io::copy(&mut stream, &mut out)
        .await
        .map_err(|e| match interruption(&e) {
            // Killed at its deadline: the reason says it all.
            Some(interrupted) => interrupted.to_string(),
            None => format!("writing the dump of {container_name} failed: {e}"),
        })?;
    out.flush()
        .await
        .map_err(|e| format!("writing the dump of {container_name} failed: {e}"))?;
    let summary = stream.finish().await.map_err(|e| e.to_string())?;
    Ok(Done::staged(
        format!(
            "{tool} dump of {} bytes staged as {}",
            summary.bytes,
            file.display()
        ),
        summary.bytes,
    ))
}
