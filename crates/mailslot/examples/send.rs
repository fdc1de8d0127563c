//! Writes one message to a local mailslot: `cargo run --example send -- NAME TEXT`.
fn main() -> std::process::ExitCode {
    report(run())
}

fn run() -> Result<(), mailslot::Error> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "example".to_owned());
    let text = args.collect::<Vec<_>>().join(" ");
    mailslot::write(&name, text.as_bytes())
}

/// Errors are printed with `Display` (one line naming the mailslot and the cause), not with
/// the `Debug` form a `main` returning `Result` would print.
fn report(result: Result<(), mailslot::Error>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
