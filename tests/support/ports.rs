//! Ports for the servers a test starts (its own Redis, the TLS lab's servers), chosen so
//! that test processes running at once, of this run or of another, never pick the same.
//!
//! A port is taken from below the kernel's ephemeral range (which `bind(0)` and outgoing
//! connections draw from), so nothing but another deliberate server can take it between
//! the choice and the server's start, or while a test has its server stopped. It is
//! claimed for the rest of this process by binding an abstract Unix socket named after it
//! (`@chat-service-test-port-N`): another test process sees the claim and picks again,
//! and the kernel drops it when this process ends, however it ends, leaving no file. A
//! port some other program listens on fails the check that it can be bound.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The claims of this process, held until it ends.
static CLAIMED: Mutex<Vec<UnixListener>> = Mutex::new(Vec::new());

/// A port on 127.0.0.1 that nothing listens on, claimed for this process.
pub fn free_port() -> u16 {
    let (low, high) = range();
    for _ in 0..1000 {
        let port = low + (random() % u64::from(high - low)) as u16;
        let name = format!("chat-service-test-port-{port}");
        let Ok(claim) = SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|address| UnixListener::bind_addr(&address))
        else {
            continue; // another test process has it
        };
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue; // some other program listens on it
        }
        CLAIMED.lock().unwrap().push(claim);
        return port;
    }
    panic!("no free port in {low}..{high} after 1000 tries");
}

/// Ports below the ephemeral range (Linux's default is 32768-60999), or above it when
/// the range starts too low to leave room below.
fn range() -> (u16, u16) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32768, 60999));
    if ephemeral.0 >= 12000 {
        (10000, ephemeral.0)
    } else if ephemeral.1 <= 63000 {
        (ephemeral.1 + 1, u16::MAX)
    } else {
        panic!("the ephemeral port range {ephemeral:?} leaves no room for test servers' ports")
    }
}

/// A number that differs between processes and between calls.
fn random() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}
