//! Reads a mailslot from tokio: `cargo run --example async_listen --features tokio -- NAME`.
use mailslot::{AsyncServer, Server};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // Errors are printed with `Display` (one line naming the mailslot and the cause), not with
    // the `Debug` form a `main` returning `Result` would print.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), mailslot::Error> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example".to_owned());
    let mut server = AsyncServer::new(Server::builder(&name).shared(true).open()?)?;
    eprintln!("listening on {name} (async)");
    loop {
        let message = server.recv().await?;
        println!("{}", String::from_utf8_lossy(&message.data));
    }
}
