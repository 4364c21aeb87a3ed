//! A database target's container and its kind. The job was scheduled with the container
//! observed then; the container may have been recreated since, and its kind may still be
//! unknown (its dump tools not looked for yet): both are settled here, when the job needs
//! them.

use std::sync::{Mutex, PoisonError};

use tracing::info;

use crate::docker::{Runtime, RuntimeError};
use crate::executor::context::JobContext;
use crate::executor::probe;
use crate::model::{ContainerInfo, DbKind};
use crate::reconcile::graph::{DB_KIND_FROM_PROBE, Target};

/// The kind of a database target: as configured, detected from the image name or told by
/// the dump tools the controller had looked for; else (the job started before that answer)
/// found from the dump tools in the container now (once per container).
pub(crate) async fn db_kind<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    target: &Target,
    id: &str,
    name: &str,
) -> Result<DbKind, String> {
    match target.db_kind {
        Some(kind) => {
            if target.ready.reason == DB_KIND_FROM_PROBE {
                // The log says why the kind is what it is, as it would had the job probed.
                info!(container = name, kind = %kind, "Database kind told by the dump tools: {}.", target.ready.message);
            }
            Ok(kind)
        }
        None => probe::db_kind(&*ctx.runtime, &ctx.probes, id, name).await,
    }
}

/// A db target's container. The job was scheduled with the container observed then; if it was
/// recreated since (a compose `up`, an image upgrade), Docker no longer knows that id, and the
/// container is looked up again by its name.
pub(crate) struct DbContainer {
    /// Its name, which survives recreation.
    name: String,
    /// The id last seen.
    id: Mutex<String>,
}

impl DbContainer {
    pub(crate) fn new(observed: &ContainerInfo) -> Self {
        Self {
            name: observed.name.clone(),
            id: Mutex::new(observed.id.clone()),
        }
    }

    /// Its name, which survives recreation.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn id(&self) -> String {
        self.id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The id of the container now: the one last seen if Docker still knows it, else the one
    /// that carries the name now.
    pub(crate) async fn current<R: Runtime>(&self, ctx: &JobContext<R>) -> Result<String, String> {
        let known = self.id();
        match ctx.runtime.inspect_container(&known).await {
            Ok(details) => return Ok(details.id),
            Err(RuntimeError::NoSuchContainer { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        match ctx.runtime.inspect_container(&self.name).await {
            Ok(details) => {
                info!(container = %self.name, old_id = %known, new_id = %details.id,
                    "The database container was recreated since the job was scheduled; going on with the new one.");
                details
                    .id
                    .clone_into(&mut self.id.lock().unwrap_or_else(PoisonError::into_inner));
                Ok(details.id)
            }
            Err(RuntimeError::NoSuchContainer { .. }) => Err(format!(
                "database container {} no longer exists (it was removed after the job was scheduled)",
                self.name
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}
