//! Opens a mailslot and prints every message: `cargo run --example listen -- NAME`.
use mailslot::{Server, Source};

fn main() -> std::process::ExitCode {
    report(run())
}

fn run() -> Result<(), mailslot::Error> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example".to_owned());
    let mut server = Server::open(&name)?;
    eprintln!("listening on {name}; try: cargo run --example send -- {name} hello");
    loop {
        let message = server.recv()?;
        let from = match message.source {
            Source::Local { pid, .. } => format!("pid {pid}"),
            Source::Network {
                ip, netbios_name, ..
            } => format!("{netbios_name} ({ip})"),
        };
        println!("{from}: {}", String::from_utf8_lossy(&message.data));
    }
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
