//! Writes one message to a local mailslot: `cargo run --example send -- NAME TEXT`.
fn main() -> Result<(), mailslot::Error> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "example".to_owned());
    let text = args.collect::<Vec<_>>().join(" ");
    mailslot::write(&name, text.as_bytes())
}
