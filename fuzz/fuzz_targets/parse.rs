//! Every parser of mailslot-wire on arbitrary bytes, with emit→parse round trips.
//! Run: `cargo +nightly fuzz run parse fuzz/seeds/parse` (or `RUSTC_BOOTSTRAP=1 cargo fuzz ...`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailslot_wire::fuzz_parse(data));
