//! Cost of mailslot-wire's parse and emit per datagram, std only.
//!
//! `cargo run --release -p mailslot-bench --bin wire_codec [ITERATIONS]`
//! Prints one row per golden datagram: ns per parse and per emit (median of 7 runs).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use mailslot_wire::{
    BrowserFrame, MailslotDatagram, MessageType, NetbiosName, SizeLimit, SmbStyle,
};

fn median_ns(iterations: u32, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iterations {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[3]
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let src = NetbiosName::new("LINUXBOX", 0).expect("valid name");
    let wg = NetbiosName::new("WORKGROUP", 0).expect("valid name");
    let text = [b'x'; 400];
    let announce = BrowserFrame::GetBackupListRequest {
        requested_count: 4,
        token: 0xDEAD_BEEF,
    }
    .to_vec()
    .expect("small frame");
    let cases: Vec<(&str, MailslotDatagram<'_>)> = vec![
        ("TEST 5 B, Windows (PROTOCOL 10.1)", {
            let mut d = MailslotDatagram::new(
                MessageType::DirectGroup,
                src,
                wg,
                "\\MAILSLOT\\TEST",
                b"Hello",
            );
            d.source_ip = Ipv4Addr::new(192, 168, 1, 10);
            d
        }),
        ("BROWSE 6 B, Samba style", {
            let mut d = MailslotDatagram::new(
                MessageType::DirectUnique,
                src,
                wg.with_suffix(0x1d),
                "\\MAILSLOT\\BROWSE",
                &announce,
            );
            d.write.style = SmbStyle::Samba;
            d
        }),
        (
            "MESSNGR 400 B, Windows",
            MailslotDatagram::new(
                MessageType::DirectGroup,
                src,
                wg,
                "\\MAILSLOT\\MESSNGR",
                &text,
            ),
        ),
    ];
    println!("mailslot-wire codec, {iterations} iterations x 7 runs (median)");
    println!(
        "{:<36} {:>6} {:>10} {:>10} {:>10}",
        "datagram", "bytes", "parse ns", "emit ns", "to_vec ns"
    );
    for (label, d) in &cases {
        let bytes = d.to_vec(SizeLimit::SambaSafe).expect("fits");
        let parse = median_ns(iterations, || {
            black_box(MailslotDatagram::parse(black_box(&bytes)).expect("valid"));
        });
        let mut buf = vec![0u8; bytes.len()];
        let emit = median_ns(iterations, || {
            black_box(
                black_box(d)
                    .emit(SizeLimit::SambaSafe, &mut buf)
                    .expect("fits"),
            );
        });
        let to_vec = median_ns(iterations, || {
            black_box(black_box(d).to_vec(SizeLimit::SambaSafe).expect("fits"));
        });
        println!(
            "{label:<36} {:>6} {parse:>10.1} {emit:>10.1} {to_vec:>10.1}",
            bytes.len()
        );
    }
}
