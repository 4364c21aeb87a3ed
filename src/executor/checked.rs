//! A database dump as a stream that fails at its end when the dump tool failed.
//!
//! A dump piped into `restic backup --stdin` must never become a snapshot if the tool exited
//! non-zero or wrote nothing: restic would save a truncated dump as if it were whole. So the
//! end of the stream is only reported after the tool's exit code was checked; a failure
//! becomes a read error, and restic is killed before it writes a snapshot.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::docker::dump::{DumpError, DumpStream, DumpSummary};

type Finish = Pin<Box<dyn Future<Output = Result<DumpSummary, DumpError>> + Send>>;

/// See the [module docs](self).
pub struct CheckedDump {
    state: State,
}

enum State {
    /// Boxed: a running dump is large next to the other states.
    Reading(Box<DumpStream>),
    Finishing(Finish),
    Done(Result<DumpSummary, String>),
}

impl CheckedDump {
    /// Wraps a running dump.
    #[must_use]
    pub fn new(dump: DumpStream) -> Self {
        Self {
            state: State::Reading(Box::new(dump)),
        }
    }

    /// How the dump ended, once the stream was read to its end.
    #[must_use]
    pub fn outcome(&self) -> Option<&Result<DumpSummary, String>> {
        match &self.state {
            State::Done(outcome) => Some(outcome),
            State::Reading(_) | State::Finishing(_) => None,
        }
    }
}

impl AsyncRead for CheckedDump {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Reading(dump) => {
                    let before = buf.filled().len();
                    match Pin::new(dump.as_mut()).poll_read(cx, buf) {
                        Poll::Ready(Ok(())) if buf.filled().len() == before => {
                            // The end: check the tool before reporting it.
                            let placeholder = State::Done(Err("the dump's state was lost".into()));
                            if let State::Reading(dump) =
                                std::mem::replace(&mut this.state, placeholder)
                            {
                                this.state = State::Finishing(Box::pin(dump.finish()));
                            }
                        }
                        other => return other,
                    }
                }
                State::Finishing(finish) => match finish.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(summary)) => this.state = State::Done(Ok(summary)),
                    Poll::Ready(Err(e)) => this.state = State::Done(Err(e.to_string())),
                },
                State::Done(Ok(_)) => return Poll::Ready(Ok(())),
                State::Done(Err(message)) => {
                    return Poll::Ready(Err(io::Error::other(message.clone())));
                }
            }
        }
    }
}
