//! The component's stdout and stderr, written the way Spin writes them.
//!
//! Spin (crates/factor-wasi/src/io.rs, `PipedWriteStream`) hands each guest write
//! synchronously to a writer behind a mutex. wasmtime-wasi's `inherit_stderr` instead goes
//! through tokio's `Stderr`, which moves every write to a blocking thread: measured here at
//! ~35 µs of host CPU per request for the component's one log line, a cost Spin does not
//! have. This keeps the host's per-request cost where Spin's is.
//!
//! A test may send guest stderr to a file instead (`HostOptions::guest_stderr`), as Spin
//! does with its log directory: a load test's thousands of log lines would bury the
//! test's own output, and are still there to read when it fails.

use std::fs::File;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Where a guest stream writes: one of the host process's streams, or a file opened
/// for appending (each guest write is one `write` of the whole buffer, so concurrent
/// requests' lines do not interleave).
#[derive(Clone)]
pub enum Stdio {
    Stdout,
    Stderr,
    File(Arc<File>),
}

impl Stdio {
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Stdout => std::io::stdout().lock().write_all(bytes),
            Self::Stderr => std::io::stderr().lock().write_all(bytes),
            Self::File(file) => (&**file).write_all(bytes),
        }
    }

    fn flush(&self) -> std::io::Result<()> {
        match self {
            Self::Stdout => std::io::stdout().lock().flush(),
            Self::Stderr => std::io::stderr().lock().flush(),
            Self::File(file) => (&**file).flush(),
        }
    }
}

impl IsTerminal for Stdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stdio {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for Stdio {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Stdio::flush(self).map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1024 * 1024)
    }
}

#[async_trait]
impl Pollable for Stdio {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Stdio {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Stdio::flush(&self))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
