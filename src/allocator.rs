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

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// Where the arena gets its memory.
pub trait Memory {
    /// The free region the arena starts in, as `(start, end)` addresses.
    fn initial_region(&self) -> (usize, usize);

    /// Adds at least `bytes` to the memory; returns the address of the new region and
    /// its length, or `None` if the memory cannot grow.
    fn grow(&self, bytes: usize) -> Option<(usize, usize)>;
}

/// The arena's state: the current region it bumps through, and how many blocks are live.
pub struct Arena<M> {
    memory: M,
    /// Whether the initial region has been taken from `memory` (a static cannot ask for
    /// it when it is built: the region's bounds are linker symbols' addresses).
    started: Cell<bool>,
    /// Start of the current region: where the arena starts over when nothing is live.
    region_start: Cell<usize>,
    /// The next free address.
    next: Cell<usize>,
    /// End of the current region.
    end: Cell<usize>,
    live: Cell<usize>,
}

// SAFETY: wasm32-wasip1 has one thread, and the tests use an arena from one thread only.
unsafe impl<M> Sync for Arena<M> {}

impl<M: Memory> Arena<M> {
    pub const fn new(memory: M) -> Self {
        Self {
            memory,
            started: Cell::new(false),
            region_start: Cell::new(0),
            next: Cell::new(0),
            end: Cell::new(0),
            live: Cell::new(0),
        }
    }

    /// Reserves `size` bytes at `align`, growing the memory if the region is full.
    fn reserve(&self, size: usize, align: usize) -> Option<usize> {
        if !self.started.get() {
            let (start, end) = self.memory.initial_region();
            self.region_start.set(start);
            self.next.set(start);
            self.end.set(end);
            self.started.set(true);
        }
        if let Some(start) = self.bump(size, align) {
            return Some(start);
        }
        let (start, len) = self.memory.grow(size.checked_add(align)?)?;
        if start != self.end.get() {
            // Not contiguous with the current region (something else grew the memory in
            // between): the rest of the old region is left unused.
            self.region_start.set(start);
            self.next.set(start);
        }
        self.end.set(start.checked_add(len)?);
        self.bump(size, align)
    }

    fn bump(&self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.get().checked_next_multiple_of(align)?;
        let stop = start.checked_add(size)?;
        (stop <= self.end.get()).then(|| {
            self.next.set(stop);
            start
        })
    }

    fn is_newest(&self, address: usize, size: usize) -> bool {
        address + size == self.next.get()
    }
}

// SAFETY: `reserve` hands out blocks inside regions the memory has granted, never two
// overlapping live blocks: `next` only moves back over a block that is being freed and
// is the newest, or to the region's start when no block is live at all.
unsafe impl<M: Memory> GlobalAlloc for Arena<M> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.reserve(layout.size(), layout.align()) {
            Some(address) => {
                self.live.set(self.live.get() + 1);
                address as *mut u8
            }
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let live = self.live.get() - 1;
        self.live.set(live);
        if live == 0 {
            self.next.set(self.region_start.get());
        } else if self.is_newest(ptr as usize, layout.size()) {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let address = ptr as usize;
        if self.is_newest(address, layout.size())
            && address
                .checked_add(new_size)
                .is_some_and(|stop| stop <= self.end.get())
        {
            self.next.set(address + new_size);
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, does not
        // overflow `isize`, so this is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; the old one is freed after.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// The instance's own linear memory.
#[cfg(target_arch = "wasm32")]
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
        fn initial_region(&self) -> (usize, usize) {
            // Only the symbols' addresses are taken, never their contents.
            (
                std::ptr::addr_of!(__heap_base) as usize,
                std::ptr::addr_of!(__heap_end) as usize,
            )
        }

        fn grow(&self, bytes: usize) -> Option<(usize, usize)> {
            let pages = bytes.div_ceil(PAGE);
            let previous = core::arch::wasm32::memory_grow(0, pages);
            (previous != usize::MAX).then(|| (previous * PAGE, pages * PAGE))
        }
    }

    #[global_allocator]
    static ARENA: Arena<LinearMemory> = Arena::new(LinearMemory);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory of `pages` pages of 4 KiB, granted one after another from a buffer.
    struct Buffer {
        bytes: Box<[u8]>,
        granted: Cell<usize>,
    }

    const PAGE: usize = 4096;

    impl Buffer {
        fn new(pages: usize) -> Self {
            Self {
                bytes: vec![0; pages * PAGE].into_boxed_slice(),
                granted: Cell::new(0),
            }
        }

        fn base(&self) -> usize {
            self.bytes.as_ptr() as usize
        }
    }

    impl Memory for &Buffer {
        fn initial_region(&self) -> (usize, usize) {
            (self.base(), self.base())
        }

        fn grow(&self, bytes: usize) -> Option<(usize, usize)> {
            let len = bytes.div_ceil(PAGE) * PAGE;
            let start = self.granted.get();
            (start + len <= self.bytes.len()).then(|| {
                self.granted.set(start + len);
                (self.base() + start, len)
            })
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
        unsafe {
            let pa = arena.alloc(a);
            let pb = arena.alloc(b);
            assert_eq!(pb as usize % 8, 0);
            assert!(pb as usize >= pa as usize + 3);
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
        for round in 0..20_000u32 {
            let pick = next();
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
                .map(|(b, l, _)| (*b as usize, *b as usize + l.size()))
                .collect();
            spans.sort();
            assert!(
                spans.windows(2).all(|w| w[0].1 <= w[1].0),
                "overlap in round {round}"
            );
            assert!(
                live.iter()
                    .all(|(b, l, _)| (*b as usize).is_multiple_of(l.align()))
            );
        }
    }
}
