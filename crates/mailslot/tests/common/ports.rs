//! Free UDP ports for tests that run a network role (shared by `net_role.rs`, which includes
//! only this file, and the tests that use `common`).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A UDP port in 20000..32000 that is free now, with `port + 1` free too (for the name
/// service), on 0.0.0.0.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let seed = (std::process::id() as usize).wrapping_mul(7919);
    for _ in 0..10_000 {
        let i = NEXT.fetch_add(2, Ordering::Relaxed);
        let port = 20_000 + ((seed + i * 2) % 12_000) as u16;
        let a = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        let b = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port + 1));
        if a.is_ok() && b.is_ok() {
            return port;
        }
    }
    panic!("no free UDP port pair in 20000..32000");
}
