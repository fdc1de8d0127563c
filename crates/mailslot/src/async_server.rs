//! The async API (feature `tokio`): a server whose reads are futures and a `Stream`.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;

use crate::error::{Error, ErrorKind};
use crate::server::{Message, Server};

/// A [`Server`] driven by tokio: `recv().await`, or use it as a `Stream` of messages.
///
/// Waiting costs no thread: the server's doorbell descriptor is registered with tokio's
/// reactor and a writer rings it when this instance waits.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mailslot-async-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use mailslot::{AsyncServer, Scope, Server, Writer};
/// let scope = Scope::Dir(dir.clone());
/// let mut server = AsyncServer::new(Server::builder("jobs").scope(scope.clone()).open()?)?;
/// Writer::open_in(&scope, "jobs")?.write(b"build")?;
/// assert_eq!(server.recv().await?.data, b"build");
/// # Ok::<(), mailslot::Error>(()) }).unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct AsyncServer {
    inner: AsyncFd<Server>,
}

impl AsyncServer {
    /// Registers `server` with the current tokio runtime.
    ///
    /// # Errors
    /// `Io` outside a runtime with I/O enabled.
    pub fn new(server: Server) -> Result<AsyncServer, Error> {
        let inner = crate::sys::register_async(server)
            .map_err(|e| Error::io("cannot register the mailslot with tokio", e))?;
        Ok(AsyncServer { inner })
    }

    /// Waits for the next message.
    ///
    /// # Errors
    /// Any read error other than the empty queue.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message (the `Stream` implementation uses this).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        loop {
            match self.inner.get_mut().try_recv() {
                Ok(message) => return Poll::Ready(Ok(message)),
                Err(e) if e.kind() == ErrorKind::TimedOut => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            // The queue was empty and the doorbell is armed: wait for a writer to ring it.
            let mut guard = match self.inner.poll_read_ready_mut(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(Error::io("cannot wait for messages", e)))
                }
                Poll::Pending => return Poll::Pending,
            };
            guard.clear_ready();
        }
    }

    /// The server inside.
    pub fn get_ref(&self) -> &Server {
        self.inner.get_ref()
    }

    /// Gives the server back (it stays open).
    pub fn into_inner(self) -> Server {
        self.inner.into_inner()
    }
}

impl futures_core::Stream for AsyncServer {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}
