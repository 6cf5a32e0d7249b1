//! What the component asks its host for besides Redis and MySQL: time, randomness and
//! the log stream, taken straight from WASI 0.2 (`wasi:clocks`, `wasi:random`,
//! `wasi:cli/stderr`).
//!
//! Rust's `std` reaches these through the preview1 adapter, which sets up its own state
//! with extra host calls the first time it is used, and Spin gives every request a fresh
//! instance, so every request would pay for that. Measured in the test host: the log line
//! alone cost ~35 µs of host CPU through `std::io::stderr`, ~10 µs directly.
//!
//! Off wasm (unit tests), the same functions use `std`.

use std::time::Duration;

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::time::Duration;

    pub fn monotonic() -> Duration {
        Duration::from_nanos(wasi::clocks::monotonic_clock::now())
    }

    pub fn since_epoch() -> Duration {
        let now = wasi::clocks::wall_clock::now();
        Duration::new(now.seconds, now.nanoseconds)
    }

    pub fn fill_random(buf: &mut [u8]) {
        buf.copy_from_slice(&wasi::random::random::get_random_bytes(buf.len() as u64));
    }

    pub fn write_stderr(bytes: &[u8]) {
        // Nothing to do if the host's log stream refuses a line.
        let _ = wasi::cli::stderr::get_stderr().blocking_write_and_flush(bytes);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::io::Write;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    pub fn monotonic() -> Duration {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }

    pub fn since_epoch() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// Unpredictable enough for tests; the component itself uses `wasi:random`.
    pub fn fill_random(buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(monotonic().as_nanos() as u64);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
        }
    }

    pub fn write_stderr(bytes: &[u8]) {
        let _ = std::io::stderr().write_all(bytes);
    }
}

/// Time on a clock that only moves forward, for durations.
pub fn monotonic() -> Duration {
    imp::monotonic()
}

/// Wall-clock time since the Unix epoch.
pub fn since_epoch() -> Duration {
    imp::since_epoch()
}

/// `N` bytes from the host's cryptographically secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    imp::fill_random(&mut buf);
    buf
}

/// Writes one complete line to the component's stderr in a single write, so lines of
/// concurrent requests never interleave.
pub fn log_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    imp::write_stderr(&bytes);
}
