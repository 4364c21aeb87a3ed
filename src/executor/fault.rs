//! Test-only fault injection: named points in the job path where a test can make Marina
//! panic, to prove that a bug in one job never wedges its instance (the job ends `failed`,
//! its undo-work runs, the instance stays schedulable).
//!
//! Compiled in only with the `fault-injection` feature, which `make test` enables; in every
//! other build [`point`] is an empty function. A point fires when the environment variable
//! `MARINA_FAULT` names it, and only the first time it is reached in the process, so the job
//! after the faulty one runs normally.

/// Panics if `MARINA_FAULT` names this point and it has not fired yet in this process.
///
/// # Panics
///
/// That is its purpose: when `MARINA_FAULT` names `name`, the first time.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    if std::env::var("MARINA_FAULT").is_ok_and(|wanted| wanted == name)
        && !FIRED.swap(true, Ordering::SeqCst)
    {
        panic!("fault injected at `{name}` (MARINA_FAULT)");
    }
}

/// Does nothing: fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[inline]
pub fn point(_name: &str) {}

/// Waits forever if `MARINA_FAULT_HANG` names this point, so a test can kill Marina at a
/// known place in a job (a crash in the middle of an in-place restore, say).
#[cfg(feature = "fault-injection")]
pub async fn hang(name: &str) {
    if std::env::var("MARINA_FAULT_HANG").is_ok_and(|wanted| wanted == name) {
        tracing::warn!(
            point = name,
            "Pausing the job here for good (MARINA_FAULT_HANG)."
        );
        std::future::pending::<()>().await;
    }
}

/// Does nothing: fault injection is compiled out.
#[cfg(not(feature = "fault-injection"))]
#[inline]
pub async fn hang(_name: &str) {}
