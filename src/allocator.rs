//! The component's memory allocator: an arena that hands out memory by bumping a pointer.
//!
//! Spin serves every request with a fresh instance and resets its linear memory when the
//! request ends, so a general-purpose allocator's bookkeeping (dlmalloc's bins, splitting
//! and coalescing) is work nobody benefits from. It stays because it still earns its place
//! under real Spin: about 4 % less CPU per warm chat creation than the same build with
//! Rust's default allocator (bench/README.md, "Under real Spin, Redis closing first").
//!
//! It still gives memory back where that is free: a block freed while it is the newest
//! one is returned at once (the usual life of a temporary), the newest block grows and
//! shrinks in place, and when no block is live any more the arena starts over. So an
//! instance that served many requests one after another, should a host ever reuse one,
//! would not grow without bound. A request's allocations are bounded by its input (a body
//! of at most 1 MiB) and by the short retry loops in `service`.
//!
//! It first uses what is left of the instance's initial memory after the static data
//! (`__heap_base` to `__heap_end`), which a warm request fits into, so it does not grow
//! the memory at all; beyond that it grows the memory by whole pages.
//!
//! It is the global allocator only where the module cannot have threads (`cfg`
//! `single_threaded_wasm`, set by build.rs): its state is plain cells, which two threads
//! would race on. Anywhere else, `wasm32-wasip1-threads` included, std's own allocator
//! stays.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// Where the arena gets its memory.
pub trait Memory {
    /// The free region the arena starts in: a pointer to its first byte and its length.
    fn initial_region(&self) -> (*mut u8, usize);

    /// Adds at least `bytes` to the memory; returns a pointer to the new region and its
    /// length, or `None` if the memory cannot grow.
    ///
    /// A region that starts where the previous one ended must be part of the same
    /// allocation, as all of linear memory is: a block may span both, and is reached
    /// through a pointer to the earlier one.
    fn grow(&self, bytes: usize) -> Option<(*mut u8, usize)>;
}

/// The arena's state: the current region it bumps through, and how many blocks are live.
///
/// Not `Sync` (its cells are not): only the wasm global allocator below is declared so,
/// for targets without threads.
pub struct Arena<M> {
    memory: M,
    /// Whether the initial region has been taken from `memory` (a static cannot ask for
    /// it when it is built: the region's bounds are linker symbols' addresses).
    started: Cell<bool>,
    /// Start of the current region: where the arena starts over when nothing is live,
    /// and the pointer every block is derived from, so that it carries the region's
    /// provenance rather than an address cast from an integer.
    region: Cell<*mut u8>,
    /// The next free address.
    next: Cell<usize>,
    /// End of the current region.
    end: Cell<usize>,
    live: Cell<usize>,
}

impl<M: Memory> Arena<M> {
    pub const fn new(memory: M) -> Self {
        Self {
            memory,
            started: Cell::new(false),
            region: Cell::new(std::ptr::null_mut()),
            next: Cell::new(0),
            end: Cell::new(0),
            live: Cell::new(0),
        }
    }

    /// Reserves `size` bytes at `align` (a power of two), growing the memory if the
    /// region is full.
    fn reserve(&self, size: usize, align: usize) -> Option<*mut u8> {
        if !self.started.get() {
            let (start, len) = self.memory.initial_region();
            // An initial region that would wrap around is not used at all.
            let end = start.addr().checked_add(len).unwrap_or(start.addr());
            self.region.set(start);
            self.next.set(start.addr());
            self.end.set(end);
            self.started.set(true);
        }
        if let Some(address) = self.bump(size, align) {
            return Some(self.region.get().with_addr(address));
        }
        let (start, len) = self.memory.grow(size.checked_add(align)?)?;
        // Worked out before any state changes, so that a region refused here leaves the
        // arena as it was: a `next` moved to the new start with the old `end` kept would
        // hand out memory that belongs to neither region.
        let end = start.addr().checked_add(len)?;
        if start.addr() != self.end.get() {
            // Not contiguous with the current region (something else grew the memory in
            // between): the rest of the old region is left unused.
            self.region.set(start);
            self.next.set(start.addr());
        }
        self.end.set(end);
        let address = self.bump(size, align)?;
        Some(self.region.get().with_addr(address))
    }

    /// The address of `size` bytes at `align` in the current region, if they fit; every
    /// step is checked, so a huge size or alignment fails rather than wrapping around.
    fn bump(&self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.get().checked_next_multiple_of(align)?;
        let stop = start.checked_add(size)?;
        (stop <= self.end.get()).then(|| {
            self.next.set(stop);
            start
        })
    }

    fn is_newest(&self, address: usize, size: usize) -> bool {
        // A live block's end does not wrap; wrapping keeps a bad argument from panicking
        // inside the allocator.
        address.wrapping_add(size) == self.next.get()
    }
}

// SAFETY: `reserve` hands out blocks of the requested size and alignment inside regions
// the memory has granted, derived from the region's pointer, never two overlapping live
// blocks: `next` only moves back over a block that is being freed and is the newest, or
// to the region's start when no block is live at all. Every address sum is checked.
unsafe impl<M: Memory> GlobalAlloc for Arena<M> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.reserve(layout.size(), layout.align()) {
            Some(block) => {
                self.live.set(self.live.get() + 1);
                block
            }
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let live = self.live.get() - 1;
        self.live.set(live);
        if live == 0 {
            self.next.set(self.region.get().addr());
        } else if self.is_newest(ptr.addr(), layout.size()) {
            self.next.set(ptr.addr());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let address = ptr.addr();
        if self.is_newest(address, layout.size())
            && let Some(stop) = address.checked_add(new_size)
            && stop <= self.end.get()
        {
            // The newest block ends at `next`, so it lies in the current region, which
            // reaches to `end`: it grows or shrinks where it is.
            self.next.set(stop);
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, does not
        // overflow `isize`, so this is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_size` is not zero (the caller's contract), as `alloc` requires.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: the old block is live with `layout.size()` bytes, the new one has
            // `new_size`; two live blocks never overlap. The old one is freed after, with
            // the layout it was allocated with.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// The instance's own linear memory, and the global allocator on it.
#[cfg(single_threaded_wasm)]
mod linear {
    use super::{Arena, Memory};

    const PAGE: usize = 64 * 1024;

    pub struct LinearMemory;

    unsafe extern "C" {
        /// The linker's marks for the free part of the initial memory: after the stack
        /// and the static data, up to the end of the initial pages.
        static __heap_base: u8;
        static __heap_end: u8;
    }

    impl Memory for LinearMemory {
        fn initial_region(&self) -> (*mut u8, usize) {
            // Only the symbols' addresses are taken, never their contents. The memory
            // between them belongs to no Rust allocation (a pointer to `__heap_base`
            // would reach one byte): the heap is reached by address, as wasm does.
            let start = std::ptr::addr_of!(__heap_base).addr();
            let end = std::ptr::addr_of!(__heap_end).addr();
            (
                std::ptr::with_exposed_provenance_mut(start),
                end.saturating_sub(start),
            )
        }

        fn grow(&self, bytes: usize) -> Option<(*mut u8, usize)> {
            let pages = bytes.div_ceil(PAGE);
            // Worked out before the memory grows, so that a size that does not fit a
            // `usize` is refused without growing it for nothing.
            let len = pages.checked_mul(PAGE)?;
            let previous = core::arch::wasm32::memory_grow(0, pages);
            if previous == usize::MAX {
                return None;
            }
            let start = previous.checked_mul(PAGE)?;
            Some((std::ptr::with_exposed_provenance_mut(start), len))
        }
    }

    // SAFETY: `single_threaded_wasm` is set only for wasm32 without the `atomics`
    // feature (build.rs), where a module has one thread: the arena's cells are never
    // reached from two threads at once.
    unsafe impl Sync for Arena<LinearMemory> {}

    #[global_allocator]
    static ARENA: Arena<LinearMemory> = Arena::new(LinearMemory);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory of `pages` pages of 4 KiB, granted one after another from one heap
    /// allocation that starts at a page, as linear memory does. Reached only through the
    /// raw pointer it was made with: a pointer from a shared borrow of it would not
    /// allow the arena's blocks to be written.
    struct Buffer {
        bytes: *mut [u8],
        granted: Cell<usize>,
    }

    const PAGE: usize = 4096;

    impl Buffer {
        fn new(pages: usize) -> Self {
            let layout = Self::layout(pages);
            // SAFETY: the layout's size is not zero.
            let start = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!start.is_null());
            Self {
                bytes: std::ptr::slice_from_raw_parts_mut(start, layout.size()),
                granted: Cell::new(0),
            }
        }

        fn layout(pages: usize) -> Layout {
            Layout::from_size_align(pages.max(1) * PAGE, PAGE).unwrap()
        }
    }

    impl Drop for Buffer {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout, and freed only here.
            unsafe {
                std::alloc::dealloc(self.bytes.cast(), Self::layout(self.bytes.len() / PAGE))
            };
        }
    }

    impl Memory for &Buffer {
        fn initial_region(&self) -> (*mut u8, usize) {
            (self.bytes.cast(), 0)
        }

        fn grow(&self, bytes: usize) -> Option<(*mut u8, usize)> {
            let len = bytes.div_ceil(PAGE).checked_mul(PAGE)?;
            let start = self.granted.get();
            (start.checked_add(len)? <= self.bytes.len()).then(|| {
                self.granted.set(start + len);
                (self.bytes.cast::<u8>().wrapping_add(start), len)
            })
        }
    }

    /// A memory whose initial region is the buffer's first page and whose growth, at the
    /// top of the address space, would wrap around.
    struct AtTheTop<'a>(&'a Buffer);

    impl Memory for AtTheTop<'_> {
        fn initial_region(&self) -> (*mut u8, usize) {
            (self.0.bytes.cast(), PAGE)
        }

        fn grow(&self, bytes: usize) -> Option<(*mut u8, usize)> {
            Some((std::ptr::without_provenance_mut(usize::MAX - 8), bytes))
        }
    }

    fn arena(buffer: &Buffer) -> Arena<&Buffer> {
        Arena::new(buffer)
    }

    #[test]
    fn blocks_are_aligned_and_the_newest_is_given_back_at_once() {
        let buffer = Buffer::new(4);
        let arena = arena(&buffer);
        let a = Layout::from_size_align(3, 1).unwrap();
        let b = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
        // freed, reallocated, read or written, with their layouts and within their sizes.
        unsafe {
            let pa = arena.alloc(a);
            let pb = arena.alloc(b);
            assert_eq!(pb.addr() % 8, 0);
            assert!(pb.addr() >= pa.addr() + 3);
            arena.dealloc(pb, b);
            // The freed newest block is handed out again.
            assert_eq!(arena.alloc(b), pb);
        }
    }

    #[test]
    fn the_newest_block_grows_in_place_and_others_move_with_their_contents() {
        let buffer = Buffer::new(8);
        let arena = arena(&buffer);
        let small = Layout::from_size_align(4, 1).unwrap();
        // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
        // freed, reallocated, read or written, with their layouts and within their sizes.
        unsafe {
            let first = arena.alloc(small);
            first.copy_from(b"abcd".as_ptr(), 4);
            let grown = arena.realloc(first, small, 100);
            assert_eq!(grown, first, "the newest block grows where it is");
            let other = arena.alloc(small);
            let moved = arena.realloc(grown, Layout::from_size_align(100, 1).unwrap(), 200);
            assert!(moved != grown && moved > other);
            assert_eq!(std::slice::from_raw_parts(moved, 4), b"abcd");
        }
    }

    #[test]
    fn it_starts_over_when_nothing_is_live() {
        let buffer = Buffer::new(4);
        let arena = arena(&buffer);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
        // freed, reallocated, read or written, with their layouts and within their sizes.
        unsafe {
            let blocks: Vec<*mut u8> = (0..3).map(|_| arena.alloc(layout)).collect();
            // Freed oldest first: only the last one could move `next` back...
            for block in &blocks {
                arena.dealloc(*block, layout);
            }
            // ...and with nothing live the whole region is free again.
            assert_eq!(arena.alloc(layout), blocks[0]);
        }
    }

    #[test]
    fn it_grows_when_full_and_fails_cleanly_when_it_cannot() {
        let buffer = Buffer::new(4);
        let arena = arena(&buffer);
        let page = Layout::from_size_align(PAGE, 8).unwrap();
        // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
        // freed, reallocated, read or written, with their layouts and within their sizes.
        unsafe {
            let blocks: Vec<*mut u8> = (0..4).map(|_| arena.alloc(page)).collect();
            assert!(blocks.iter().all(|b| !b.is_null()));
            assert!(arena.alloc(page).is_null(), "the buffer is used up");
            assert!(
                arena
                    .alloc(Layout::from_size_align(usize::MAX / 2, 1).unwrap())
                    .is_null()
            );
        }
    }

    #[test]
    fn huge_sizes_and_alignments_fail_cleanly() {
        let buffer = Buffer::new(4);
        let arena = arena(&buffer);
        let largest_align = 1 << (usize::BITS - 2);
        // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
        // freed, reallocated, read or written, with their layouts and within their sizes.
        unsafe {
            let small = arena.alloc(Layout::from_size_align(8, 8).unwrap());
            assert!(!small.is_null());
            for layout in [
                Layout::from_size_align(1, largest_align).unwrap(),
                Layout::from_size_align(isize::MAX as usize - PAGE, PAGE).unwrap(),
                Layout::from_size_align(isize::MAX as usize, 1).unwrap(),
            ] {
                assert!(arena.alloc(layout).is_null(), "{layout:?}");
            }
            let after = arena.alloc(Layout::from_size_align(8, 8).unwrap());
            assert_eq!(after.addr(), small.addr() + 8, "the arena kept its state");
        }
    }

    #[test]
    fn a_region_whose_end_would_wrap_around_is_refused_and_nothing_changes() {
        let buffer = Buffer::new(1);
        let arena = Arena::new(AtTheTop(&buffer));
        let half = Layout::from_size_align(PAGE / 2, 1).unwrap();
        // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
        // freed, reallocated, read or written, with their layouts and within their sizes.
        unsafe {
            let first = arena.alloc(half);
            assert_eq!(first, buffer.bytes.cast::<u8>());
            assert!(
                arena
                    .alloc(Layout::from_size_align(PAGE, 8).unwrap())
                    .is_null()
            );
            // The refused region left `next` and `end` alone: the rest of the first page
            // is still handed out, right after the first block.
            let second = arena.alloc(half);
            assert_eq!(second.addr(), first.addr() + PAGE / 2);
            second.write_bytes(1, PAGE / 2);
        }
    }

    /// Whether the `len` bytes at `block` all hold `fill`.
    unsafe fn filled_with(block: *const u8, len: usize, fill: u8) -> bool {
        // SAFETY: the caller passes a live block of at least `len` bytes.
        unsafe { std::slice::from_raw_parts(block, len) }
            .iter()
            .all(|b| *b == fill)
    }

    /// Random allocations, reallocations and frees: live blocks never overlap and keep
    /// their contents.
    #[test]
    fn live_blocks_never_overlap_and_keep_their_contents() {
        // Enough for every block ever allocated: the arena reuses only what it can.
        let buffer = Buffer::new(4096);
        let arena = arena(&buffer);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Miri runs it too (scripts/check-unsafe), a thousand times slower.
        let rounds: u32 = if cfg!(miri) { 1_000 } else { 20_000 };
        for round in 0..rounds {
            let pick = next();
            // SAFETY: every layout has a non-zero size, and only blocks this arena handed out are
            // freed, reallocated, read or written, with their layouts and within their sizes.
            unsafe {
                match pick % 4 {
                    0 => {
                        let layout =
                            Layout::from_size_align(1 + (next() % 300) as usize, 1 << (next() % 4))
                                .unwrap();
                        let block = arena.alloc(layout);
                        assert!(!block.is_null());
                        let fill = round as u8;
                        block.write_bytes(fill, layout.size());
                        live.push((block, layout, fill));
                    }
                    1 | 2 if !live.is_empty() => {
                        let (block, layout, fill) =
                            live.swap_remove((next() as usize) % live.len());
                        assert!(filled_with(block, layout.size(), fill));
                        arena.dealloc(block, layout);
                    }
                    3 if !live.is_empty() => {
                        let at = (next() as usize) % live.len();
                        let (block, layout, fill) = live[at];
                        let new_size = 1 + (next() % 600) as usize;
                        let moved = arena.realloc(block, layout, new_size);
                        assert!(!moved.is_null());
                        assert!(filled_with(moved, layout.size().min(new_size), fill));
                        moved.write_bytes(fill, new_size);
                        live[at] = (
                            moved,
                            Layout::from_size_align(new_size, layout.align()).unwrap(),
                            fill,
                        );
                    }
                    _ => {}
                }
            }
            let mut spans: Vec<(usize, usize)> = live
                .iter()
                .map(|(b, l, _)| (b.addr(), b.addr() + l.size()))
                .collect();
            spans.sort();
            assert!(
                spans.windows(2).all(|w| w[0].1 <= w[1].0),
                "overlap in round {round}"
            );
            assert!(
                live.iter()
                    .all(|(b, l, _)| b.addr().is_multiple_of(l.align()))
            );
        }
    }
}
