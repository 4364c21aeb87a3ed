//! Marina, a backup controller for Docker hosts.
//!
//! Marina keeps a *desired state* — backup instances from `config.yml` and targets found
//! through `dev.polarfox.marina.*` labels — and reconciles it against the *observed state*
//! of the Docker engine, running each instance's backups on its schedule.
//!
//! # Layout
//!
//! Data flows one way: sources translate what happens into messages, one reconciler decides,
//! the executor acts on its orders, and readers only look at what it publishes.
//!
//! ```text
//!  sources (translate)            brain (single writer)          hands (effects)
//!  sources::docker_events ─┐                                  ┌─► executor ─► backend
//!  sources::config_file   ─┼─► inbox ─► reconcile ─── orders ─┘      │   docker, store
//!  API commands           ─┘     ▲          │                        │
//!                                │          ▼ Arc<Snapshot>          │
//!                                │   http · gauges · plan            │
//!                                └──────── JobFinished ◄─────────────┘
//! ```
//!
//! The modules, lowest layer first; each imports only modules listed before it (the test
//! `tests/architecture.rs` holds the same list and fails on any import against it):
//!
//! - [`model`] — pure vocabulary shared by every stage: instance and target ids, target
//!   specs, schedules, retention, secrets, job ids, statuses, kinds and triggers, the
//!   observed inventory, and the label model ([`model::labels`]).
//! - [`clock`] — the only reader of time; everything else takes `now` as an argument.
//! - [`config`] — `config.yml` bytes → a validated [`config::Config`] (position-aware YAML,
//!   environment expansion, every problem with `file:line:column`); no watching, no metrics.
//! - [`store`] — the SQLite job store, the only module that imports rusqlite: jobs, log
//!   lines (batched by one writer thread, fed by [`store::LogLayer`] from `tracing`) and
//!   the crash journal of undo-work.
//! - [`metrics`] — the Prometheus metrics of SPEC §7 in one registry: typed events that log
//!   and count in one place ([`metrics::events`]), and the state gauges set from a plain
//!   [`metrics::StateReading`].
//! - [`telemetry`] — logging setup.
//! - [`backend`] — where data goes: the restic backend ([`backend::restic`]: one file per
//!   repository operation, one child process per command, minimal environment, timeouts,
//!   parsed `--json`, secret-free errors) and the backup summary shared by all backends.
//! - [`docker`] — the bollard adapter, the only module that talks to the engine: listing, the
//!   event stream, and the [`docker::Runtime`] the executor acts through (exec streams,
//!   database dumps, helper and backend containers, stop/start).
//! - [`reconcile`] — the inbox messages, the state graph, the pure `reconcile` function, the
//!   work queue, and the controller task that owns them and publishes snapshots.
//! - [`sources`] — what happens outside becomes inbox messages, without deciding anything:
//!   [`sources::config_file`] (edits of `config.yml`, `SIGHUP`) and [`sources::docker_events`]
//!   (a listing, then events, with reconnect-and-relist).
//! - [`executor`] — runs the jobs the controller starts: one shared runner (journal, undo,
//!   status, cancellation), the steps every kind uses (hooks, `stopAttached`, dumps), and
//!   each job kind in its own folder; start-up recovery.
//! - [`gauges`] — follows the snapshots and sets the state gauges from each.
//! - [`plan`] — `marina plan`'s table and JSON, rendered from a snapshot.
//! - [`http`] — health, readiness, the API, the dashboard and `/metrics`: state from
//!   snapshots, jobs and logs from the store, "back up now" as a command into the inbox.
//! - [`app`] — wiring: start-up and shutdown order of `marina run`, and `marina plan`.
//!
//! The binary (`src/main.rs`) is the command line; it is the only place errors become exit
//! codes.

pub mod app;
pub mod backend;
pub mod clock;
pub mod config;
pub mod docker;
pub mod executor;
pub mod gauges;
pub mod http;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod sources;
pub mod store;
pub mod telemetry;
