//! A dump fed to a client's stdin inside the database container, through a small bounded
//! channel: the dump is never held in memory, and it flows at the client's pace.
//!
//! The feeding is done here rather than by handing the dump itself to the exec, so that a
//! dump that fails midway (restic could not read the rest) kills the client *before* its
//! stdin closes: end-of-input would let it take the truncated dump for a whole one.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::docker::{ExecSpec, OutputLine, Runtime, RuntimeError};

/// Bytes read from the dump at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client: at most a quarter of a megabyte of the dump in memory.
const QUEUED_CHUNKS: usize = 4;

/// How feeding the dump ended.
#[derive(Debug)]
pub(super) enum FeedEnd {
    /// All of it (and the trailer) was handed to the client, and its stdin was closed.
    Done,
    /// Reading the dump failed; the client was killed before its stdin closed.
    DumpFailed(io::Error),
    /// The client stopped reading (it exited, or was stopped) before the dump ended.
    ClientStopped,
}

/// What was fed.
#[derive(Debug)]
pub(super) struct Fed {
    /// Bytes of the dump handed to the client (the trailer not counted).
    pub(super) bytes: u64,
    /// How it ended.
    pub(super) end: FeedEnd,
}

/// Runs `spec` (which must have no stdin of its own) with `head`, the rest of `dump` and then
/// `trailer` on its stdin, delivering its output lines to `on_line`; returns its exit code
/// (or why it has none) and what was fed.
pub(super) async fn run_fed<R, D, F>(
    runtime: &R,
    mut spec: ExecSpec,
    head: Vec<u8>,
    dump: &mut D,
    trailer: &[u8],
    on_line: F,
) -> (Result<i64, RuntimeError>, Fed)
where
    R: Runtime,
    D: AsyncRead + Unpin + Send,
    F: FnMut(OutputLine) + Send,
{
    // Ours to fire when the dump fails; the job's cancellation fires it too.
    let stop = spec
        .limits
        .cancel
        .as_ref()
        .map_or_else(CancellationToken::new, CancellationToken::child_token);
    spec.limits.cancel = Some(stop.clone());
    let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
    let spec = spec.stdin(ChannelReader {
        queue,
        chunk: Vec::new(),
        offset: 0,
    });
    let client = runtime.exec_capture(spec, on_line);
    let feeder = feed(head, dump, trailer, chunks, &stop);
    let (code, (fed, kept_open)) = tokio::join!(client, feeder);
    // Only now, with the client gone, may its stdin close.
    drop(kept_open);
    (code, fed)
}

/// Sends the dump into the channel. On a dump error it fires `stop` (the client is killed)
/// and hands back the sender, which must stay open until the client is gone.
async fn feed<D: AsyncRead + Unpin + Send>(
    head: Vec<u8>,
    dump: &mut D,
    trailer: &[u8],
    chunks: mpsc::Sender<Vec<u8>>,
    stop: &CancellationToken,
) -> (Fed, Option<mpsc::Sender<Vec<u8>>>) {
    let mut bytes = head.len() as u64;
    let stopped = |bytes| {
        (
            Fed {
                bytes,
                end: FeedEnd::ClientStopped,
            },
            None,
        )
    };
    if !head.is_empty() && chunks.send(head).await.is_err() {
        return stopped(0);
    }
    loop {
        let mut chunk = vec![0_u8; CHUNK];
        let read = tokio::select! {
            read = dump.read(&mut chunk) => read,
            () = stop.cancelled() => return stopped(bytes),
        };
        match read {
            Ok(0) => break,
            Ok(count) => {
                chunk.truncate(count);
                if chunks.send(chunk).await.is_err() {
                    return stopped(bytes);
                }
                bytes += count as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                stop.cancel();
                let fed = Fed {
                    bytes,
                    end: FeedEnd::DumpFailed(error),
                };
                return (fed, Some(chunks));
            }
        }
    }
    if !trailer.is_empty() && chunks.send(trailer.to_vec()).await.is_err() {
        return stopped(bytes);
    }
    (
        Fed {
            bytes,
            end: FeedEnd::Done,
        },
        None,
    )
}

/// The client's stdin: the chunks the feeder sends, ending when the feeder closes the
/// channel.
struct ChannelReader {
    queue: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    offset: usize,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.offset < this.chunk.len() {
                let rest = &this.chunk[this.offset..];
                let count = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..count]);
                this.offset += count;
                return Poll::Ready(Ok(()));
            }
            match this.queue.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(chunk)) => {
                    this.chunk = chunk;
                    this.offset = 0;
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump that yields `good` bytes, then fails.
    struct Breaking {
        good: usize,
    }

    impl AsyncRead for Breaking {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this.good == 0 {
                return Poll::Ready(Err(io::Error::other("restic failed")));
            }
            let count = this.good.min(buf.remaining());
            buf.put_slice(&vec![b'x'; count]);
            this.good -= count;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn everything_and_the_trailer_arrive_then_the_input_ends() {
        let stop = CancellationToken::new();
        let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
        let mut reader = ChannelReader {
            queue,
            chunk: Vec::new(),
            offset: 0,
        };
        let mut dump = &b" and the rest"[..];
        let feeding = feed(b"head".to_vec(), &mut dump, b";end", chunks, &stop);
        let mut received = Vec::new();
        let ((fed, kept), read) = tokio::join!(feeding, reader.read_to_end(&mut received));
        read.unwrap();
        assert_eq!(received, b"head and the rest;end");
        assert_eq!(fed.bytes, 17);
        assert!(matches!(fed.end, FeedEnd::Done));
        assert!(kept.is_none());
    }

    #[tokio::test]
    async fn a_failing_dump_stops_the_client_and_keeps_its_input_open() {
        let stop = CancellationToken::new();
        let (chunks, mut queue) = mpsc::channel(QUEUED_CHUNKS);
        let mut dump = Breaking { good: 100 };
        let (fed, kept) = feed(Vec::new(), &mut dump, b"", chunks, &stop).await;
        assert!(stop.is_cancelled());
        assert!(matches!(fed.end, FeedEnd::DumpFailed(_)));
        assert_eq!(fed.bytes, 100);
        assert_eq!(queue.recv().await.unwrap().len(), 100);
        // The input has not ended: the sender is still there.
        assert!(kept.is_some());
        assert!(queue.try_recv().is_err());
        drop(kept);
        assert!(queue.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_ends_the_feeding() {
        let stop = CancellationToken::new();
        let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
        drop(queue);
        let mut dump = &b"data"[..];
        let (fed, _) = feed(b"head".to_vec(), &mut dump, b"", chunks, &stop).await;
        assert!(matches!(fed.end, FeedEnd::ClientStopped));
    }
}
