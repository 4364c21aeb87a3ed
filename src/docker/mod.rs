//! The Docker adapter: the only module that talks to the Docker engine (through bollard).
//!
//! Two faces, each built in one-way layers: a file only uses the files listed below it.
//!
//! What Marina observes, for the Docker source (`sources::docker_events`):
//!
//! - `events` — the engine's event stream, reduced to which object to read again.
//! - `inventory` — [`DockerClient::list`] reads every volume and container into a
//!   [`crate::model::Inventory`]; [`DockerClient::volume`] / [`DockerClient::container`]
//!   re-read one object after an event.
//! - `client` — [`DockerClient`], one negotiated connection, cheap to clone, and
//!   [`DockerError`].
//!
//! What jobs do to containers, for the executor:
//!
//! - [`dump`], [`own_container`], [`volume_fill`] — database dumps, finding Marina's own
//!   container, and filling a volume from a directory with a helper, written against the
//!   [`Runtime`] trait alone.
//! - `runtime` — the [`Runtime`] trait and [`DockerRuntime`], which implements it with the
//!   files below.
//! - `clone` — offline clones of database containers (no network, none of their data).
//! - `volumes` — volumes Marina creates and removes itself, and one volume read in full.
//! - `one_shot` — Marina's own helper and backend containers, run to completion and removed.
//! - `images` — image presence and pulls ([`PullPolicy`]).
//! - `containers` — other containers: details, stop/start, who mounts a volume.
//! - `upload` — a file put into a container (running or stopped) with the archive upload
//!   ([`UploadFile`]).
//! - `exec` — `docker exec` ([`ExecSpec`]), streamed, with the kill that ends it early.
//! - `output` — an exec's stdout as a stream ([`ExecStream`]), its stderr tail, its exit code.
//! - `error` — [`RuntimeError`], the error of all of the above.
//! - `lines`, `limits` — output cut into lines ([`OutputLine`]); what ends a process early
//!   ([`ExecLimits`]) and how that went ([`ExecInterrupted`]).
//! - `client` — the connection, shared with the other face.
//!
//! Everything leaving this module is Marina's own model; bollard types stay inside.

mod client;
mod clone;
mod containers;
pub mod dump;
mod error;
mod events;
mod exec;
mod images;
mod inventory;
mod limits;
mod lines;
mod one_shot;
mod output;
pub mod own_container;
mod runtime;
mod upload;
pub mod volume_fill;
mod volumes;

pub use client::{DockerClient, DockerError, Result};
pub use containers::{ContainerDetails, ContainerMount, ContainerRef, MountKind};
pub use error::RuntimeError;
pub(crate) use events::{EngineEvent, Refresh};
pub use exec::{ExecSpec, ExecStdin};
pub use images::PullPolicy;
pub use limits::{
    Deadline, ExecInterrupted, ExecKill, ExecLimits, Interruption, KillOutcome, interruption,
};
pub use lines::{OutputLine, OutputStream};
pub use one_shot::{
    BACKUP_MOUNT, DEFAULT_BACKUP_COMMAND, DEFAULT_RESTORE_COMMAND, HelperSpec, INSTANCE_LABEL,
    JobContainerSpec, MountSpec, OWNER_LABEL, ROLE_BACKEND, ROLE_HELPER, ROLE_LABEL, ROLE_PROBE,
    RunOutcome,
};
pub use output::{ExecOutcome, ExecStatus, ExecStream, STDERR_TAIL_BYTES, StatusProbe, StderrTail};
pub use runtime::{DockerRuntime, Runtime};
pub use upload::UploadFile;
pub use volumes::{NewVolume, VolumeDetails, VolumeScope};
