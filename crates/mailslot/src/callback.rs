//! A callback helper: a thread the library owns reads a server and calls the user's function
//! for each message; dropping the helper stops the thread and closes the server.

use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind};
use crate::server::{Message, Server};
use crate::sys;

/// Runs a function for every message of a server on a thread of its own.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mailslot-cb-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
/// use mailslot::{Callback, Scope, Server, Writer};
/// let scope = Scope::Dir(dir.clone());
/// let server = Server::builder("events").scope(scope.clone()).open()?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let helper = Callback::spawn(server, move |message| {
///     let _ = tx.send(message.data);
/// })?;
/// Writer::open_in(&scope, "events")?.write(b"ping")?;
/// assert_eq!(rx.recv().unwrap(), b"ping");
/// drop(helper); // stops the thread and closes the mailslot
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), mailslot::Error>(())
/// ```
#[derive(Debug)]
pub struct Callback {
    stop: UnixDatagram,
    thread: Option<JoinHandle<()>>,
}

impl Callback {
    /// Starts the thread. Errors other than timeouts end it (after the function saw them
    /// through [`Callback::spawn_with_errors`]; here they are dropped).
    ///
    /// # Errors
    /// `Io` if the thread or its stop channel cannot be created.
    pub fn spawn<F>(server: Server, mut on_message: F) -> Result<Callback, Error>
    where
        F: FnMut(Message) + Send + 'static,
    {
        Callback::spawn_with_errors(server, move |result| {
            if let Ok(message) = result {
                on_message(message);
            }
        })
    }

    /// Like [`Callback::spawn`], but the function also sees read errors (the thread ends
    /// after a non-timeout error).
    ///
    /// # Errors
    /// `Io` if the thread or its stop channel cannot be created.
    pub fn spawn_with_errors<F>(mut server: Server, mut on_result: F) -> Result<Callback, Error>
    where
        F: FnMut(Result<Message, Error>) + Send + 'static,
    {
        let (stop, stop_rx) =
            UnixDatagram::pair().map_err(|e| Error::io("cannot create a stop channel", e))?;
        let thread = std::thread::Builder::new()
            .name(format!("mailslot {}", server.name()))
            .spawn(move || loop {
                // Drain everything waiting, then sleep on the doorbell and the stop channel.
                match server.try_recv() {
                    Ok(message) => {
                        on_result(Ok(message));
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(e) => {
                        on_result(Err(e));
                        return;
                    }
                }
                match sys::poll_readable(&[server.as_fd(), stop_rx.as_fd()], None) {
                    Ok(mask) if mask & 2 != 0 => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        on_result(Err(Error::io("cannot wait for messages", e)));
                        return;
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the callback thread", e))?;
        Ok(Callback {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        let _ = self.stop.send(&[1]);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
