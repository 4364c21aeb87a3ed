//! Cutting a process's output into lines ([`OutputLine`]) for live job logs: hooks, helpers
//! and backend containers report what they print line by line, stdout and stderr apart.
//!
//! Nothing here talks to the engine: the real adapter and an in-memory fake build the same
//! lines.

/// A line longer than this is delivered in pieces, so one endless line (a progress bar without
/// newlines, binary garbage) cannot grow a buffer without bound.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Which of a process's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a process's output, without its line ending, decoded as UTF-8 (invalid bytes
/// are replaced, so binary noise cannot break a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Where the line came from.
    pub stream: OutputStream,
    /// The text, without `\n` (or `\r\n`).
    pub text: String,
}

/// Cuts a byte stream into lines as bytes arrive, keeping an unfinished line for the next
/// chunk. One splitter per output stream, so stdout and stderr lines never mix.
#[derive(Debug)]
pub(super) struct LineSplitter {
    /// Which stream the lines are attributed to.
    stream: OutputStream,
    /// The unfinished line so far (never more than [`MAX_LINE_BYTES`]).
    partial: Vec<u8>,
}

impl LineSplitter {
    pub(super) fn new(stream: OutputStream) -> Self {
        Self {
            stream,
            partial: Vec::new(),
        }
    }

    /// Feeds a chunk, delivering every line it completes.
    pub(super) fn push(&mut self, mut chunk: &[u8], on_line: &mut impl FnMut(OutputLine)) {
        while !chunk.is_empty() {
            let room = MAX_LINE_BYTES - self.partial.len();
            match chunk.iter().take(room).position(|&b| b == b'\n') {
                Some(end) => {
                    self.partial.extend_from_slice(&chunk[..end]);
                    chunk = &chunk[end + 1..];
                    self.emit(on_line);
                }
                None if chunk.len() < room => {
                    self.partial.extend_from_slice(chunk);
                    chunk = &[];
                }
                None => {
                    // The line is too long: deliver what fits and go on with the rest.
                    self.partial.extend_from_slice(&chunk[..room]);
                    chunk = &chunk[room..];
                    self.emit(on_line);
                }
            }
        }
    }

    /// Delivers an unfinished last line (output that did not end with a newline).
    pub(super) fn finish(&mut self, on_line: &mut impl FnMut(OutputLine)) {
        if !self.partial.is_empty() {
            self.emit(on_line);
        }
    }

    fn emit(&mut self, on_line: &mut impl FnMut(OutputLine)) {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        let text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        on_line(OutputLine {
            stream: self.stream,
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::new(OutputStream::Stdout);
        let mut on_line = |line: OutputLine| lines.push(line.text);
        for chunk in chunks {
            splitter.push(chunk, &mut on_line);
        }
        splitter.finish(&mut on_line);
        lines
    }

    #[test]
    fn lines_are_reassembled_across_chunks() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\n", b"", b"three"]),
            ["one", "two", "three"]
        );
        assert_eq!(split(&[b"\n\n"]), ["", ""]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn an_endless_line_is_cut_into_bounded_pieces() {
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        let lines = split(&[&long, b"\nend\n"]);
        assert_eq!(
            lines.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 3]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(split(&[b"a\xffb\n"]), ["a\u{fffd}b"]);
    }
}
