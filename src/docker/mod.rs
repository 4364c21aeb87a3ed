//! The Docker adapter: the only module that talks to the Docker engine (through bollard).
//!
//! - [`DockerClient`] — one negotiated connection, cheap to clone; [`DockerClient::list`]
//!   reads every volume and container into a [`crate::model::Inventory`], and
//!   [`DockerClient::volume`] / [`DockerClient::container`] re-read one object after an event.
//! - `events` — the engine's event stream, reduced to which object to read again, for the
//!   Docker source (`sources::docker_events`).
//!
//! Everything leaving this module is Marina's own model; bollard types stay inside.

mod client;
mod containers;
pub mod dump;
mod events;
mod exec;
mod inventory;
mod output;
pub mod own_container;
mod runtime;

pub use client::{DockerClient, DockerError, Result};
pub use containers::{BACKUP_MOUNT, DEFAULT_BACKUP_COMMAND};
pub(crate) use events::{EngineEvent, Refresh};
pub use output::{
    Deadline, ExecInterrupted, ExecKill, ExecLimits, ExecOutcome, ExecStatus, ExecStream,
    Interruption, KillOutcome, OutputLine, OutputStream, STDERR_TAIL_BYTES, StatusProbe,
    StderrTail, interruption,
};
pub use runtime::{
    ContainerDetails, ContainerMount, ContainerRef, DockerRuntime, ExecSpec, ExecStdin, HelperSpec,
    INSTANCE_LABEL, JobContainerSpec, MountKind, MountSpec, OWNER_LABEL, PullPolicy, ROLE_BACKEND,
    ROLE_HELPER, ROLE_LABEL, RunOutcome, Runtime, RuntimeError,
};
