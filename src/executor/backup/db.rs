//! A database target of a backup, for each backend: restic takes the dump as a stream into
//! the repository (checked at its end, so a dump tool that failed never becomes a snapshot);
//! a custom image gets the dump as a file in the run's staging layout.

use tracing::info;

use crate::backend::restic::{BackupOptions, Session};
use crate::docker::Runtime;
use crate::executor::checked::CheckedDump;
use crate::executor::context::{Done, JobContext};
use crate::executor::staging::RunLayout;
use crate::executor::steps::db_container::DbContainer;
use crate::executor::steps::dump::{dump_to_file, start_dump};
use crate::model::DbKind;
use crate::reconcile::graph::Target;

/// Streams the dump of `db` into the repository as `{container}/{dump file}`; `extra_tags`
/// go on the snapshot besides Marina's own (a restore's safety snapshot is tagged so).
pub(crate) async fn into_restic<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    session: &mut Session<'_>,
    target: &Target,
    db: &DbContainer,
    kind: DbKind,
    dump_args: &[String],
    extra_tags: &[String],
) -> Result<Done, String> {
    // A stream is read once: the repository must be open before the dump starts.
    session.open().await.map_err(|e| e.to_string())?;
    let stream = start_dump(ctx, db, kind, dump_args).await?;
    let tool = stream.tool();
    info!(tool, "Streaming the dump into restic.");
    let filename = format!("{}/{}", db.name(), kind.dump_file_name());
    let mut checked = CheckedDump::new(stream);
    let summary = session
        .backup_stdin(
            &target.spec.id,
            &filename,
            &mut checked,
            &BackupOptions {
                extra_tags: extra_tags.to_vec(),
                ..BackupOptions::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let bytes = match checked.outcome() {
        Some(Ok(dumped)) => dumped.bytes,
        Some(Err(e)) => return Err(e.clone()),
        None => 0,
    };
    Ok(Done {
        summary: format!("{tool} dump of {bytes} bytes; {summary}"),
        bytes_added: summary.bytes_added,
        bytes_read: bytes,
    })
}

/// Writes the dump of `db` to its file in the run's layout.
pub(super) async fn stage<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    layout: &RunLayout,
    db: &DbContainer,
    kind: DbKind,
    dump_args: &[String],
) -> Result<Done, String> {
    dump_to_file(ctx, db, kind, dump_args, &layout.dump_file(db.name(), kind)).await
}
