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
#[derive(Clone, Copy)]
struct Ciovec {
    buf: *const u8,
    len: usize,
}

/// Preview 1's errno for a null pointer where memory is needed: `EFAULT`.
const ERRNO_FAULT: i32 = 21;
/// Preview 1's errno for lengths that add up to more than a slice holds: `EINVAL`, as
/// `writev` answers a total that overflows.
const ERRNO_INVAL: i32 = 28;
/// Preview 1's errno for a failed write: `EIO`.
const ERRNO_IO: i32 = 29;

/// `fd_write` for the panic message (fd 2), and for fd 1 should anything ever print.
///
/// # Safety
/// As [`write_iovecs`]; wasi-libc passes `iovs_len` `Ciovec`s at `iovs` and a writable
/// `nwritten`.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
unsafe extern "C" fn __imported_wasi_snapshot_preview1_fd_write(
    _fd: i32,
    iovs: *const Ciovec,
    iovs_len: usize,
    nwritten: *mut usize,
) -> i32 {
    let stderr = wasi::cli::stderr::get_stderr();
    // SAFETY: wasi-libc's arguments meet `write_iovecs`'s contract (see above).
    unsafe {
        write_iovecs(iovs, iovs_len, nwritten, |bytes| {
            crate::wasi_output::write_all(&stderr, bytes)
        })
    }
}

/// Hands `write` the bytes the `iovs_len` iovecs at `iovs` name, in order, and stores at
/// `nwritten` how many it took; returns preview 1's errno.
///
/// Nothing is written unless every iovec is usable. An empty iovec is skipped without a
/// look at its pointer, which may then be null or dangling: no slice is made from it.
/// Neither `iovs` nor `nwritten` needs to be aligned.
///
/// # Safety
/// Unless `iovs_len` is 0, `iovs` is null or points to `iovs_len` readable `Ciovec`s;
/// each `Ciovec` with a `len` other than 0 has a null `buf` or one pointing to `len`
/// readable bytes, not written to while `write` runs; `nwritten` is null or points to
/// writable room for a `usize`.
unsafe fn write_iovecs<E>(
    iovs: *const Ciovec,
    iovs_len: usize,
    nwritten: *mut usize,
    mut write: impl FnMut(&[u8]) -> Result<(), E>,
) -> i32 {
    if nwritten.is_null() || (iovs.is_null() && iovs_len > 0) {
        return ERRNO_FAULT;
    }
    // SAFETY: called only for `i` below `iovs_len`, so `iovs` is not null (checked
    // above) and points to `iovs_len` readable `Ciovec`s (the caller's contract); the
    // read is unaligned.
    let iov = |i: usize| unsafe { iovs.add(i).read_unaligned() };
    // Checked before anything is written, as `writev` does: a slice's length must fit
    // in an `isize`, and so must the total reported back.
    let mut total = 0usize;
    for i in 0..iovs_len {
        let Ciovec { buf, len } = iov(i);
        if len > 0 && buf.is_null() {
            return ERRNO_FAULT;
        }
        total = match total.checked_add(len) {
            Some(total) if total <= isize::MAX as usize => total,
            _ => return ERRNO_INVAL,
        };
    }
    for i in 0..iovs_len {
        let Ciovec { buf, len } = iov(i);
        if len == 0 {
            continue;
        }
        // SAFETY: `buf` is not null (checked above) and points to `len` readable bytes
        // left alone while `write` runs (the caller's contract); `len` is at most the
        // total, which fits in an `isize`; a `u8` needs no alignment.
        let bytes = unsafe { std::slice::from_raw_parts(buf, len) };
        if write(bytes).is_err() {
            return ERRNO_IO;
        }
    }
    // SAFETY: `nwritten` is not null (checked above), so it points to writable room for
    // a `usize` (the caller's contract); an unaligned write.
    unsafe { nwritten.write_unaligned(total) };
    0
}

/// The environment has no variables.
///
/// # Safety
/// As [`store_no_environment`]; wasi-libc passes two writable counts.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
unsafe extern "C" fn __imported_wasi_snapshot_preview1_environ_sizes_get(
    count: *mut usize,
    bytes: *mut usize,
) -> i32 {
    // SAFETY: wasi-libc's arguments meet `store_no_environment`'s contract (see above).
    unsafe { store_no_environment(count, bytes) }
}

/// Stores 0 variables and 0 bytes of them; returns preview 1's errno.
///
/// # Safety
/// `count` and `bytes` are each null or point to writable room for a `usize`, aligned
/// or not.
unsafe fn store_no_environment(count: *mut usize, bytes: *mut usize) -> i32 {
    if count.is_null() || bytes.is_null() {
        return ERRNO_FAULT;
    }
    // SAFETY: neither is null (checked above), so both point to writable room for a
    // `usize` (the caller's contract); unaligned writes.
    unsafe {
        count.write_unaligned(0);
        bytes.write_unaligned(0);
    }
    0
}

/// Nothing to copy: [`__imported_wasi_snapshot_preview1_environ_sizes_get`] said none.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
extern "C" fn __imported_wasi_snapshot_preview1_environ_get(_environ: i32, _buf: i32) -> i32 {
    0
}

/// Under Spin, `exit` ends the instance with a trap; so does this.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
extern "C" fn __imported_wasi_snapshot_preview1_proc_exit(_code: i32) -> ! {
    core::arch::wasm32::unreachable()
}

/// The pointer handling, run natively (and under Miri and AddressSanitizer by
/// `scripts/check-unsafe`): what wasi-libc may pass, empty and null buffers included.
#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::{null, null_mut};

    /// What `write_iovecs` handed over, piece by piece, and its errno and count.
    fn run(iovs: *const Ciovec, iovs_len: usize) -> (i32, usize, Vec<Vec<u8>>) {
        let mut pieces = Vec::new();
        let mut written = usize::MAX;
        // SAFETY: each test passes iovecs that meet the contract, or pointers that
        // `write_iovecs` must refuse without reading through them.
        let errno = unsafe {
            write_iovecs(iovs, iovs_len, &mut written, |bytes| {
                pieces.push(bytes.to_vec());
                Ok::<(), ()>(())
            })
        };
        (errno, written, pieces)
    }

    fn iov(bytes: &[u8]) -> Ciovec {
        Ciovec {
            buf: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    #[test]
    fn every_iovec_is_written_in_order() {
        let iovs = [iov(b"thread 'main' "), iov(b"panicked"), iov(b"\n")];
        let (errno, written, pieces) = run(iovs.as_ptr(), iovs.len());
        assert_eq!((errno, written), (0, 23));
        assert_eq!(pieces.concat(), b"thread 'main' panicked\n");
    }

    #[test]
    fn empty_iovecs_are_skipped_whatever_their_pointer() {
        let dangling = std::ptr::NonNull::<u8>::dangling().as_ptr();
        let iovs = [
            Ciovec {
                buf: null(),
                len: 0,
            },
            iov(b"ab"),
            Ciovec {
                buf: dangling,
                len: 0,
            },
            Ciovec {
                buf: std::ptr::without_provenance(usize::MAX),
                len: 0,
            },
            iov(b"c"),
        ];
        let (errno, written, pieces) = run(iovs.as_ptr(), iovs.len());
        assert_eq!((errno, written), (0, 3));
        assert_eq!(pieces, [b"ab".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn no_iovecs_write_nothing_even_at_a_null_or_dangling_array() {
        for iovs in [null(), std::ptr::NonNull::<Ciovec>::dangling().as_ptr()] {
            let (errno, written, pieces) = run(iovs, 0);
            assert_eq!((errno, written), (0, 0));
            assert!(pieces.is_empty());
        }
    }

    #[test]
    fn null_pointers_that_would_be_read_or_written_are_refused() {
        assert_eq!(run(null(), 1), (ERRNO_FAULT, usize::MAX, vec![]));
        let iovs = [
            iov(b"kept back"),
            Ciovec {
                buf: null(),
                len: 1,
            },
        ];
        assert_eq!(run(iovs.as_ptr(), 2), (ERRNO_FAULT, usize::MAX, vec![]));
        // SAFETY: `nwritten` is null, which must be refused before anything is read.
        let errno = unsafe { write_iovecs(iovs.as_ptr(), 1, null_mut(), |_| Ok::<(), ()>(())) };
        assert_eq!(errno, ERRNO_FAULT);
    }

    #[test]
    fn lengths_beyond_what_a_slice_holds_are_refused_before_any_read() {
        let byte = [0u8];
        // Lengths no memory backs: refused before any slice is made from them.
        let huge = Ciovec {
            buf: byte.as_ptr(),
            len: isize::MAX as usize + 1,
        };
        assert_eq!(run(&huge, 1), (ERRNO_INVAL, usize::MAX, vec![]));
        let half = Ciovec {
            buf: byte.as_ptr(),
            len: isize::MAX as usize / 2 + 1,
        };
        assert_eq!(
            run([half, half].as_ptr(), 2),
            (ERRNO_INVAL, usize::MAX, vec![])
        );
    }

    #[test]
    fn an_unaligned_iovec_array_and_count_are_read_and_written() {
        let text = b"unaligned";
        let mut raw = [0u8; 1 + size_of::<Ciovec>()];
        let iovs = raw[1..].as_mut_ptr().cast::<Ciovec>();
        let mut out = [0u8; 1 + size_of::<usize>()];
        let nwritten = out[1..].as_mut_ptr().cast::<usize>();
        let mut pieces = Vec::new();
        // SAFETY: `raw` and `out` hold room for one `Ciovec` and one `usize` after their
        // first byte; `write_iovecs` reads and writes them unaligned.
        let errno = unsafe {
            iovs.write_unaligned(iov(text));
            write_iovecs(iovs, 1, nwritten, |bytes| {
                pieces.push(bytes.to_vec());
                Ok::<(), ()>(())
            })
        };
        assert_eq!(errno, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { nwritten.read_unaligned() }, text.len());
        assert_eq!(pieces, [text.to_vec()]);
    }

    #[test]
    fn a_failed_write_stops_the_rest_and_reports_no_count() {
        let iovs = [iov(b"a"), iov(b"b")];
        let mut calls = 0;
        let mut written = usize::MAX;
        // SAFETY: two valid iovecs and a writable count.
        let errno = unsafe {
            write_iovecs(iovs.as_ptr(), 2, &mut written, |_| {
                calls += 1;
                Err(())
            })
        };
        assert_eq!((errno, calls, written), (ERRNO_IO, 1, usize::MAX));
    }

    #[test]
    fn the_environment_is_empty_and_null_counts_are_refused() {
        let (mut count, mut bytes) = (7usize, 7usize);
        // SAFETY: two writable counts, then null ones, which must be refused.
        unsafe {
            assert_eq!(store_no_environment(&mut count, &mut bytes), 0);
            assert_eq!((count, bytes), (0, 0));
            assert_eq!(store_no_environment(null_mut(), &mut bytes), ERRNO_FAULT);
            assert_eq!(store_no_environment(&mut count, null_mut()), ERRNO_FAULT);
        }
    }
}
