//! What ends a process in a container early and how ending it went: a [`Deadline`] and a
//! cancellation ([`ExecLimits`]), the kill that runs once one is reached ([`ExecKill`], also on
//! drop through [`KillOnDrop`]), and [`ExecInterrupted`], which reports it.
//!
//! Nothing here talks to the engine: the real adapter passes in a kill that runs a second
//! exec, an in-memory fake one that just records it.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// When a process in a container must have finished, and the setting that says so (for the
/// message that reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When it passes.
    pub at: tokio::time::Instant,
    /// How long the process was given.
    pub limit: Duration,
    /// Where the limit comes from, as the operator knows it (`hookTimeout`, `resticTimeout`).
    pub setting: &'static str,
}

impl Deadline {
    /// A deadline `limit` from now.
    #[must_use]
    pub fn after(limit: Duration, setting: &'static str) -> Self {
        Self {
            at: Clock::System.instant() + limit,
            limit,
            setting,
        }
    }
}

/// What ends a process in a container early: a deadline, a cancellation (job timeout,
/// shutdown), both or neither.
#[derive(Debug, Clone, Default)]
pub struct ExecLimits {
    /// Kill it when this passes.
    pub deadline: Option<Deadline>,
    /// Kill it when this fires.
    pub cancel: Option<CancellationToken>,
}

impl ExecLimits {
    /// Limits with both a deadline and a cancellation.
    #[must_use]
    pub fn new(deadline: Deadline, cancel: CancellationToken) -> Self {
        Self {
            deadline: Some(deadline),
            cancel: Some(cancel),
        }
    }

    /// The same cancellation with `deadline`, or the earlier of the two deadlines.
    #[must_use]
    pub fn at_most(&self, deadline: Deadline) -> Self {
        let deadline = match self.deadline {
            Some(own) if own.at <= deadline.at => own,
            _ => deadline,
        };
        Self {
            deadline: Some(deadline),
            cancel: self.cancel.clone(),
        }
    }

    /// Resolves once the deadline passes or the cancellation fires; never without either.
    #[must_use]
    pub fn reached(&self) -> BoxFuture<'static, Interruption> {
        let deadline = self.deadline;
        let cancel = self.cancel.clone();
        Box::pin(async move {
            let passed = async {
                match deadline {
                    Some(deadline) => {
                        tokio::time::sleep_until(deadline.at).await;
                        Interruption::Deadline(deadline)
                    }
                    None => std::future::pending().await,
                }
            };
            let cancelled = async {
                match cancel {
                    Some(cancel) => {
                        cancel.cancelled().await;
                        Interruption::Cancelled
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                interruption = passed => interruption,
                interruption = cancelled => interruption,
            }
        })
    }
}

/// Why a process was ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// It ran past its deadline.
    Deadline(Deadline),
    /// Its job was stopped (job timeout or shutdown).
    Cancelled,
}

/// How killing a process inside its container went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOutcome {
    /// Every process of the exec was signalled and is gone.
    Killed,
    /// The container is gone or stopped, and its processes with it.
    ContainerGone,
    /// The container has no `sh` to run the kill with.
    NoShell,
    /// The kill could not run or did not finish.
    Failed(String),
}

impl KillOutcome {
    /// Whether the process is known to be gone.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Killed | Self::ContainerGone)
    }
}

impl fmt::Display for KillOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Killed => f.write_str("was killed"),
            Self::ContainerGone => f.write_str("ended with its container"),
            Self::NoShell => f.write_str(
                "could not be killed inside the container (it has no sh); it may still be running there",
            ),
            Self::Failed(reason) => write!(
                f,
                "could not be killed inside the container ({reason}); it may still be running there"
            ),
        }
    }
}

/// A process in a container that Marina ended early, and how the kill went.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExecInterrupted {
    /// What ran, with its container: `pre-hook in container app-1`.
    pub what: String,
    /// Why it was ended.
    pub interruption: Interruption,
    /// Whether the kill worked.
    pub kill: KillOutcome,
}

impl fmt::Display for ExecInterrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.interruption {
            Interruption::Deadline(deadline) => write!(
                f,
                "{} ran longer than {} {} and {}",
                self.what,
                deadline.setting,
                humantime::format_duration(deadline.limit),
                self.kill
            ),
            Interruption::Cancelled => write!(
                f,
                "{} was stopped because its job was stopped (job timeout or shutdown) and {}",
                self.what, self.kill
            ),
        }
    }
}

/// The [`ExecInterrupted`] inside an I/O error from reading an exec's output, if that is why
/// the read failed.
#[must_use]
pub fn interruption(error: &io::Error) -> Option<&ExecInterrupted> {
    error.get_ref()?.downcast_ref::<ExecInterrupted>()
}

/// Kills an exec's processes inside its container; the real adapter runs a second exec.
pub type ExecKill = Arc<dyn Fn() -> BoxFuture<'static, KillOutcome> + Send + Sync>;

/// Ends a process when its limits are reached: watching, then killing, then done.
pub(super) struct Control {
    /// What runs, for the message.
    what: String,
    /// How to kill it.
    kill: ExecKill,
    /// Where it stands.
    stop: Stop,
}

enum Stop {
    /// Waiting for a limit.
    Watching(BoxFuture<'static, Interruption>),
    /// A limit was reached; the kill runs.
    Killing(Interruption, BoxFuture<'static, KillOutcome>),
    /// Killed; every read reports it.
    Done(ExecInterrupted),
}

impl Control {
    pub(super) fn new(what: String, limits: &ExecLimits, kill: ExecKill) -> Self {
        Self {
            what,
            kill,
            stop: Stop::Watching(limits.reached()),
        }
    }

    /// Whether a limit was reached (the kill runs or ran).
    pub(super) fn stopping(&self) -> bool {
        !matches!(self.stop, Stop::Watching(_))
    }

    /// Ready once a limit was reached and the kill has run.
    pub(super) fn poll_stop(&mut self, cx: &mut Context<'_>) -> Poll<ExecInterrupted> {
        loop {
            match &mut self.stop {
                Stop::Watching(reached) => match reached.as_mut().poll(cx) {
                    Poll::Ready(interruption) => {
                        self.stop = Stop::Killing(interruption, (self.kill)());
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Stop::Killing(interruption, killing) => match killing.as_mut().poll(cx) {
                    Poll::Ready(kill) => {
                        let interrupted = ExecInterrupted {
                            what: self.what.clone(),
                            interruption: *interruption,
                            kill,
                        };
                        tracing::warn!(kill_worked = interrupted.kill.is_gone(), "{interrupted}.");
                        self.stop = Stop::Done(interrupted);
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Stop::Done(interrupted) => return Poll::Ready(interrupted.clone()),
            }
        }
    }
}

/// Kills an exec's processes when dropped while armed: a hook, dump or probe abandoned by a
/// cancelled or timed-out caller must not go on running inside the container.
pub(super) struct KillOnDrop {
    /// The kill and what it kills; `None` once disarmed.
    armed: Option<(ExecKill, String)>,
}

impl KillOnDrop {
    /// Armed: dropping it kills.
    pub(super) fn new(kill: ExecKill, what: String) -> Self {
        Self {
            armed: Some((kill, what)),
        }
    }

    /// Never kills.
    pub(super) fn disarmed() -> Self {
        Self { armed: None }
    }

    /// The process exited (or was killed already): dropping no longer kills.
    pub(super) fn disarm(&mut self) {
        self.armed = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some((kill, what)) = self.armed.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "{what} was abandoned outside the async runtime and could not be killed inside its container."
            );
            return;
        };
        handle.spawn(async move {
            match kill().await {
                KillOutcome::Killed | KillOutcome::ContainerGone => {
                    tracing::info!("{what} was abandoned before it finished and was killed inside its container.");
                }
                outcome => tracing::warn!("{what} was abandoned before it finished and {outcome}."),
            }
        });
    }
}
