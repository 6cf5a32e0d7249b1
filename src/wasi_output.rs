//! Writing to a WASI 0.2 output stream: the reply's body, the log line, and std's
//! `fd_write` ([`crate::preview1`]).
//!
//! One `blocking-write-and-flush` takes at most [`BLOCKING_WRITE_MAX`] bytes, and a host
//! built on wasmtime (Spin, the test host) traps the instance on a longer one, so anything
//! that may be longer goes in pieces. The floors of `bench/` include this file too.

use wasi::io::streams::{OutputStream, StreamError};

/// The most `blocking-write-and-flush` accepts in one call (wasi:io 0.2).
pub const BLOCKING_WRITE_MAX: usize = 4096;

/// Writes all of `bytes` to `stream`, stopping at the first failure.
pub fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), StreamError> {
    in_pieces(bytes, |piece| stream.blocking_write_and_flush(piece))
}

/// Hands `write` the bytes in pieces it accepts, until one fails.
fn in_pieces<E>(bytes: &[u8], write: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
    bytes.chunks(BLOCKING_WRITE_MAX).try_for_each(write)
}

#[cfg(test)]
mod tests {
    use super::in_pieces;

    #[test]
    fn a_long_write_goes_in_pieces_the_stream_takes() {
        let mut pieces = Vec::new();
        let bytes = vec![7u8; 10_000];
        assert_eq!(
            in_pieces(&bytes, |piece| {
                pieces.push(piece.len());
                Ok::<(), ()>(())
            }),
            Ok(())
        );
        assert_eq!(pieces, [4096, 4096, 1808]);
    }

    #[test]
    fn a_refused_write_stops_the_rest() {
        let mut calls = 0;
        assert_eq!(
            in_pieces(&[0; 9000], |_| {
                calls += 1;
                Err(())
            }),
            Err(())
        );
        assert_eq!(calls, 1);
    }
}
