//! Three instances of one shared name in one process, fed by two writer threads: each
//! instance prints the same order. `cargo run --example shared`.
use mailslot::{Server, Writer};

fn main() -> std::process::ExitCode {
    report(run())
}

fn run() -> Result<(), mailslot::Error> {
    let name = format!("shared-example-{}", std::process::id());
    let mut instances = (0..3)
        .map(|_| Server::builder(&name).shared(true).open())
        .collect::<Result<Vec<_>, _>>()?;
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|tag| {
            let name = name.clone();
            std::thread::spawn(move || -> Result<(), mailslot::Error> {
                let mut writer = Writer::open(&name)?;
                for i in 0..5 {
                    writer.write(format!("{tag}{i}").as_bytes())?;
                }
                Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread panicked")?;
    }
    for (i, instance) in instances.iter_mut().enumerate() {
        let got: Vec<String> = (0..10)
            .map(|_| {
                instance
                    .recv()
                    .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            })
            .collect::<Result<_, _>>()?;
        println!("instance {i}: {}", got.join(" "));
    }
    Ok(())
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
