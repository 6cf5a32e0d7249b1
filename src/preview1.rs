//! The four WASI preview 1 functions Rust's `std` links in, answered inside the module so
//! that it imports no preview 1 at all and Spin has no preview1 adapter to add.
//!
//! A `wasm32-wasip1` module that imports anything from `wasi_snapshot_preview1` is turned
//! into a component by wrapping it with the preview1 adapter, a second core instance with
//! its own imports, which Spin instantiates and wires up for every request's instance.
//! The component calls WASI 0.2 directly for everything it does ([`crate::platform`]);
//! only `std`'s own machinery still names preview 1 (through wasi-libc): the panic message
//! (`fd_write`), the `RUST_BACKTRACE` look-up before it (`environ_get`,
//! `environ_sizes_get`) and `exit` (`proc_exit`). Defining wasi-libc's import symbols here
//! makes the linker resolve them to these definitions instead of imports; the price is
//! that they also appear as exports of the core module, which Spin ignores. What the
//! adapter cost per request: bench/README.md, "Without the preview1 adapter".
//!
//! They behave as the adapter would under Spin: a panic's message still reaches the
//! component's log (stdout and stderr go to the one log stream, stderr), the environment
//! is empty (the component takes its settings from Spin variables, and its manifest gives
//! it no environment), and `exit` ends the instance with a trap.
//!
//! The floors of `bench/` include this file too, so that they pay for what the component
//! pays and no more.

/// An `iovec` as preview 1 lays it out in linear memory.
#[repr(C)]
struct Ciovec {
    buf: *const u8,
    len: usize,
}

/// Preview 1's errno for a failed write: `EIO`.
const ERRNO_IO: i32 = 29;

/// `fd_write` for the panic message (fd 2), and for fd 1 should anything ever print.
///
/// # Safety
/// Called by wasi-libc with `iovs_len` valid `Ciovec`s at `iovs` and a writable `nwritten`.
#[unsafe(no_mangle)]
unsafe extern "C" fn __imported_wasi_snapshot_preview1_fd_write(
    _fd: i32,
    iovs: *const Ciovec,
    iovs_len: usize,
    nwritten: *mut usize,
) -> i32 {
    // SAFETY: the caller's contract above.
    let iovs = unsafe { std::slice::from_raw_parts(iovs, iovs_len) };
    let stderr = wasi::cli::stderr::get_stderr();
    let mut written = 0;
    for iov in iovs {
        // SAFETY: each iovec names `len` readable bytes of linear memory.
        let bytes = unsafe { std::slice::from_raw_parts(iov.buf, iov.len) };
        if crate::wasi_output::write_all(&stderr, bytes).is_err() {
            return ERRNO_IO;
        }
        written += bytes.len();
    }
    // SAFETY: the caller's contract above.
    unsafe { *nwritten = written };
    0
}

/// The environment has no variables.
///
/// # Safety
/// Called by wasi-libc with two writable counts.
#[unsafe(no_mangle)]
unsafe extern "C" fn __imported_wasi_snapshot_preview1_environ_sizes_get(
    count: *mut usize,
    bytes: *mut usize,
) -> i32 {
    // SAFETY: the caller's contract above.
    unsafe {
        *count = 0;
        *bytes = 0;
    }
    0
}

/// Nothing to copy: [`__imported_wasi_snapshot_preview1_environ_sizes_get`] said none.
#[unsafe(no_mangle)]
extern "C" fn __imported_wasi_snapshot_preview1_environ_get(_environ: i32, _buf: i32) -> i32 {
    0
}

/// Under Spin, `exit` ends the instance with a trap; so does this.
#[unsafe(no_mangle)]
extern "C" fn __imported_wasi_snapshot_preview1_proc_exit(_code: i32) -> ! {
    core::arch::wasm32::unreachable()
}
