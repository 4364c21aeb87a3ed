//! Pure vocabulary shared by every stage: identifiers, jobs, targets, schedules, retention
//! and the label model. Nothing here performs I/O or reads the clock.

mod ids;
mod job;
pub mod labels;
#[cfg(test)]
mod labels_props;
mod observed;
mod restore;
mod retention;
mod schedule;
mod secret;
mod target;

pub use ids::{DockerName, IdError, InstanceId, TargetId};
pub use job::{History, JobId, JobKind, JobStatus, Trigger, UnknownWord};
pub use observed::{
    ContainerInfo, ContainerState, Inventory, InventoryChange, VolumeInfo, VolumeMount,
};
pub use restore::{
    PRE_RESTORE_TAG, Refusal, RefusalKind, RestoreAnswer, RestorePlan, RestorePoint,
    RestoreQuestion, RestoreRequest, RestoreStep, SnapshotChoice,
};
pub use retention::{Retention, RetentionError};
pub use schedule::{Schedule, ScheduleError};
pub use secret::Secret;
pub use target::{
    COMPANION_WORDS, DbKind, PROBED_TOOLS, PathError, ProbeError, ProbeResult, TargetKind,
    TargetSpec, ToolProbe, UnknownDbKind, VolumePath,
};
