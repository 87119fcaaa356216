//! Driving one server [`Session`] over a stream: bytes in, replies out,
//! every message stored before it is acknowledged, timeouts on the clock.
//!
//! The node's accept loop serves its connections with [`drive_server`];
//! anything else that plays an SMTP server over a stream (the simulation's
//! foreign exchangers, a test's server) can use it too, with its own
//! [`ServerHooks`].

use std::collections::VecDeque;
use std::future::Future;

use relayguard_core::{Message, Output, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::clock::{Clock, sleep_until};
use crate::ports::StoreError;

/// What [`drive_server`] asks of whoever runs the session: storing the
/// messages, and seeing what passes. All but `store` default to nothing.
pub trait ServerHooks {
    /// Bytes read from the client, before the session sees them.
    fn client_bytes(&mut self, _bytes: &[u8]) {}
    /// Bytes the session sends, before they are written.
    fn server_bytes(&mut self, _bytes: &[u8]) {}
    /// The session handed on a message; [`ServerHooks::store`] follows.
    fn handed_on(&mut self, _message: &Message) {}
    /// Stores the message durably and returns its queue id. The session
    /// answers (`250` with the id, or `451`) only when this completes.
    fn store(&mut self, message: Message) -> impl Future<Output = Result<String, StoreError>>;
    /// BUG ack-before-store: answer `250` before the store completes.
    fn ack_before_store(&self) -> bool {
        false
    }
}

/// Runs `session` over `stream` until the session closes it, the client
/// goes away, or a write fails. Pass `&mut stream` to keep the stream.
pub async fn drive_server<St, H>(mut stream: St, mut s: Session, clock: &Clock, hooks: &mut H)
where
    St: AsyncRead + AsyncWrite + Unpin,
    H: ServerHooks,
{
    let mut queue: VecDeque<Output> = VecDeque::new();
    let mut buf = vec![0u8; 8192];
    'conn: loop {
        queue.extend(std::iter::from_fn(|| s.poll_output()));
        while let Some(out) = queue.pop_front() {
            match out {
                Output::Send(bytes) => {
                    hooks.server_bytes(&bytes);
                    if stream.write_all(&bytes).await.is_err() {
                        break 'conn;
                    }
                }
                Output::Message(m) => {
                    hooks.handed_on(&m);
                    let early = hooks.ack_before_store();
                    if early {
                        // BUG ack-before-store: the 250 leaves before the spool write completes.
                        s.message_stored(clock.now(), Ok("unstored".into()));
                        queue.extend(std::iter::from_fn(|| s.poll_output()));
                        while let Some(Output::Send(bytes)) = queue.front() {
                            hooks.server_bytes(bytes);
                            let _ = stream.write_all(bytes).await;
                            queue.pop_front();
                        }
                    }
                    let stored = hooks.store(*m).await;
                    if !early {
                        // The session needs only ok or not: it answers 451 to any error.
                        s.message_stored(
                            clock.now(),
                            stored.map_err(|e| relayguard_core::NotStored(e.to_string())),
                        );
                    }
                    queue.extend(std::iter::from_fn(|| s.poll_output()));
                }
                Output::Close => {
                    let _ = stream.shutdown().await;
                    break 'conn;
                }
            }
        }
        let deadline = s.poll_timeout();
        tokio::select! {
            biased;
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break 'conn,
                Ok(n) => {
                    hooks.client_bytes(&buf[..n]);
                    s.handle_input(clock.now(), &buf[..n]);
                }
            },
            _ = sleep_until(deadline.map(|d| clock.instant(d))) => {
                s.handle_timeout(clock.now());
            }
        }
    }
}
