//! The way back of [`super::volume_copy`]: filling a volume's paths from a directory Marina
//! sees (restic restored into it) with a helper container, for when Marina cannot write the
//! volume's data where it lies. The work, and what it keeps and loses, is
//! [`crate::docker::volume_fill`]; this step finds the directory's host path and speaks the
//! job's language.

use std::path::Path;

use crate::docker::own_container::host_path;
use crate::docker::volume_fill::{FillMode, FillSpec, fill_volume};
use crate::docker::{PullPolicy, Runtime};
use crate::executor::context::{JobContext, log_output};
use crate::model::VolumePath;

/// Copies `paths` from `source` (as Marina sees it, laid out like the volume) into `volume`
/// with a helper container, into empty places only or replacing what is there (`mode`).
/// The error is the target's reason: the helper's own refusal when it refused a path.
pub(crate) async fn fill_volume_from<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    volume: &str,
    paths: &[VolumePath],
    source: &Path,
    mode: FillMode,
) -> Result<(), String> {
    let host_source = host_path(&*ctx.runtime, ctx.own_container.as_deref(), source)
        .await
        .map_err(|e| format!("cannot find the host path of the restored files: {e}"))?;
    let spec = FillSpec {
        image: ctx.config.helper_image.clone(),
        job_id: ctx.job.to_string(),
        owner: ctx.owner.clone(),
        volume: volume.to_owned(),
        source: host_source,
        paths: paths.to_vec(),
        mode,
        pull: PullPolicy::IfMissing,
    };
    fill_volume(&*ctx.runtime, spec, log_output, ctx.cancel.clone())
        .await
        .map_err(|e| e.to_string())
}
