//! Steps on one target that every kind of job working on targets reuses — a backup today; a
//! restore or a restore drill next — each in the file named after what it does. They take
//! the job's [`super::context::JobContext`] and the target as the controller observed it,
//! and know nothing of backends or of the job kind they serve.
//!
//! - [`hooks`] — a target's pre-hook and post-hook around its work (SPEC §3.3).
//! - [`attached`] — `stopAttached`: stopping the containers writing to a volume, and
//!   starting them again (SPEC §3.2).
//! - [`db_container`] — a database target's container now (it may have been recreated since
//!   the job was scheduled) and its database kind.
//! - [`dump`] — a database dump, streamed or written to a file.
//! - [`volume_copy`] — a copy of a volume's paths made by a helper container.
//! - [`volume_fill`] — the way back: a volume's paths filled from a directory by a helper
//!   container.
//! - [`custom_image`] — an instance's custom image run once over a run directory: to back
//!   up what was staged there, or to restore into it.
//!
//! They build on one another only downwards: hooks and dumps find their container through
//! [`db_container`]; nothing here imports a job kind.

pub(crate) mod attached;
pub(crate) mod custom_image;
pub(crate) mod db_container;
pub(crate) mod dump;
pub(crate) mod hooks;
pub(crate) mod volume_copy;
pub(crate) mod volume_fill;
