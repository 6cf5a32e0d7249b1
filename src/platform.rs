//! What the component asks its host for besides Redis and MySQL: time, sleep, randomness
//! and the log stream, taken straight from WASI 0.2 (`wasi:clocks`, `wasi:random`,
//! `wasi:cli/stderr`).
//!
//! Rust's `std` reaches these through preview 1, which Spin serves with the preview1
//! adapter: it sets up its own state with extra host calls the first time it is used, and
//! Spin gives every request a fresh instance, so every request would pay for that (the
//! figures: bench/README.md, "Figures behind comments in src/"). The component imports no
//! preview 1 at all (src/preview1.rs).
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
        let _ = crate::wasi_output::write_all(&wasi::cli::stderr::get_stderr(), bytes);
    }

    pub fn sleep(duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
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

    pub fn sleep(duration: Duration) {
        std::thread::sleep(duration);
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

/// Blocks for `duration`, on the monotonic clock. (`std::thread::sleep` would go through
/// the preview1 adapter's `poll_oneoff`, and every import the component keeps, used or
/// not, is wired up again when each request's instance is created.)
pub fn sleep(duration: Duration) {
    imp::sleep(duration);
}

/// `N` bytes from the host's cryptographically secure random source.
///
/// Dealt from a small pool that one host call fills: a request draws 44 bytes (its
/// request id and its job's two ids), and every `get-random-bytes` is a host call of its
/// own. No byte is dealt twice.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if N > POOL_BYTES {
        imp::fill_random(&mut buf);
        return buf;
    }
    POOL.with_borrow_mut(|(bytes, dealt)| {
        if POOL_BYTES - *dealt < N {
            imp::fill_random(bytes);
            *dealt = 0;
        }
        buf.copy_from_slice(&bytes[*dealt..*dealt + N]);
        *dealt += N;
    });
    buf
}

/// Enough for one request's draws.
const POOL_BYTES: usize = 64;

thread_local! {
    /// The pool and how much of it has been dealt; it starts empty (all dealt).
    static POOL: std::cell::RefCell<([u8; POOL_BYTES], usize)> =
        const { std::cell::RefCell::new(([0; POOL_BYTES], POOL_BYTES)) };
}

/// Writes one complete line, its newline included, to the component's stderr in a single
/// write (up to 4,096 bytes; a longer one in pieces), so lines of concurrent requests
/// never interleave.
pub fn log_line(line: &str) {
    debug_assert!(line.ends_with('\n'));
    imp::write_stderr(line.as_bytes());
}
