//! Driving one server [`Session`] over a stream: bytes in, replies out,
//! every message stored before it is acknowledged, timeouts on the clock.
//!
//! The node's accept loop serves its connections with [`drive_server`];
//! anything else that plays an SMTP server over a stream (the simulation's
//! foreign exchangers, a test's server) can use it too, with its own
//! [`ServerHooks`].

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::{Message, Output, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use tokio::time::Instant;

use crate::clock::{Clock, sleep_until};
use crate::ports::StoreError;

/// What the driver decides after a failed AUTH: how long to pause before
/// the next command is served, and whether AUTH is refused from now on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthThrottle {
    pub pause: Duration,
    pub refuse: bool,
}

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
    /// Whether the session hands bodies out in pieces, for
    /// [`ServerHooks::body_piece`] to write as they arrive; then the
    /// message [`ServerHooks::store`] gets has an empty body.
    fn streams_bodies(&self) -> bool {
        false
    }
    /// The next piece of the body being received (streaming only).
    fn body_piece(&mut self, _piece: Vec<u8>) -> impl Future<Output = ()> {
        async {}
    }
    /// Drops the pieces since the last stored message: it was refused, or
    /// the connection ended before it.
    fn drop_body(&mut self) -> impl Future<Output = ()> {
        async {}
    }
    /// BUG ack-before-store: answer `250` before the store completes.
    fn ack_before_store(&self) -> bool {
        false
    }
    /// How long one write of replies may take before the connection is
    /// dropped (a client that does not read); `None` waits for ever.
    fn write_timeout(&self) -> Option<Duration> {
        None
    }
    /// `failed` more AUTH attempts of `client` failed, `in_session` in this
    /// session so far: count them, and say how long to pause. `client` is
    /// the session's client as it stands (a trusted proxy's XCLIENT names
    /// it), so that one guesser behind a proxy does not lock out the rest.
    fn auth_failed(&mut self, _client: IpAddr, _failed: u32, _in_session: u32) -> AuthThrottle {
        AuthThrottle::default()
    }
    /// Whether `client` is refused AUTH for now (asked before each input,
    /// so that failures on other connections count too).
    fn auth_refused(&self, _client: IpAddr) -> bool {
        false
    }
    /// The pause after each error reply beyond the soft error limit; none
    /// by default.
    fn error_delay(&self) -> Duration {
        Duration::ZERO
    }
    /// Something worth a log line happened to the connection.
    fn note(&mut self, _what: &str) {}
    /// The server side of STARTTLS for this connection; `None` (the
    /// default): no TLS. Whoever returns a configuration has called
    /// [`Session::offer_tls`] before the first input.
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        None
    }
    /// The handshake after STARTTLS completed; the `injected` octets the
    /// client sent after the STARTTLS line were thrown away unread.
    fn tls_established(&mut self, _injected: u64) {}
}

/// Writes `bytes` by `deadline`; false if the write failed or was not done
/// by then.
async fn write<St: AsyncWrite + Unpin>(stream: &mut St, bytes: &[u8], deadline: Option<Instant>) -> bool {
    match deadline {
        None => stream.write_all(bytes).await.is_ok(),
        Some(d) => matches!(
            tokio::time::timeout_at(d, stream.write_all(bytes)).await,
            Ok(Ok(()))
        ),
    }
}

/// When a write (or a pause) must be over: [`ServerHooks::write_timeout`]
/// from now, and never after the session's own deadline, which cannot
/// fire while the driver waits on a write. `None` without a write timeout.
fn write_deadline(s: &Session, clock: &Clock, timeout: Option<Duration>) -> Option<Instant> {
    let t = clock.instant(clock.now()) + timeout?;
    Some(match s.poll_timeout() {
        Some(d) => t.min(clock.instant(d)),
        None => t,
    })
}

/// Runs `session` over `stream` until the session closes it, the client
/// goes away, or a write fails or does not finish within
/// [`ServerHooks::write_timeout`]. Pass `&mut stream` to keep the stream.
///
/// Outputs are taken one at a time, each written before the next is asked
/// for, and the client is read from only while the session wants input:
/// a client that does not read its replies is served no more than the
/// session's bound of unread replies ahead.
///
/// STARTTLS: when [`ServerHooks::tls`] gives a configuration (the caller
/// has called [`Session::offer_tls`]), the session's
/// [`Output::StartTls`] comes after its `220` has been written; the
/// handshake runs on the same stream, under the session's command deadline,
/// and the session goes on over TLS. Nothing read before the handshake is
/// kept by the driver: what the client pipelined after `STARTTLS` is the
/// session's to throw away (and count). A failed handshake closes.
pub async fn drive_server<St, H>(mut stream: St, mut s: Session, clock: &Clock, hooks: &mut H)
where
    St: AsyncRead + AsyncWrite + Unpin,
    H: ServerHooks,
{
    if hooks.streams_bodies() {
        s.stream_bodies();
    }
    if let Ended::StartTls = serve(&mut stream, &mut s, clock, hooks).await {
        if let Some(mut tls) = handshake(&mut stream, &s, clock, hooks).await {
            s.tls_established(clock.now());
            hooks.tls_established(s.injected_octets());
            // The session refuses a second STARTTLS (503): if one were asked
            // for anyway, the connection simply ends.
            serve(&mut tls, &mut s, clock, hooks).await;
        }
    }
    // A message cut off by a timeout or a client gone: its partial file goes.
    hooks.drop_body().await;
}

/// How [`serve`] ended.
enum Ended {
    /// The session closed, the client went away, or a write failed.
    Closed,
    /// The session asked for TLS; its `220` has been written.
    StartTls,
}

/// The TLS handshake after STARTTLS, by the session's deadline (else the
/// write timeout from now); `None` if there is no configuration, or the
/// handshake failed or was not done in time, and the connection ends.
async fn handshake<St, H>(
    stream: St,
    s: &Session,
    clock: &Clock,
    hooks: &mut H,
) -> Option<tokio_rustls::server::TlsStream<St>>
where
    St: AsyncRead + AsyncWrite + Unpin,
    H: ServerHooks,
{
    let Some(config) = hooks.tls() else {
        hooks.note("STARTTLS asked for without a TLS configuration: closed");
        return None;
    };
    let deadline = match s.poll_timeout() {
        Some(d) => Some(clock.instant(d)),
        None => hooks.write_timeout().map(|t| clock.instant(clock.now()) + t),
    };
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    let done = match deadline {
        Some(d) => tokio::time::timeout_at(d, accept).await,
        None => Ok(accept.await),
    };
    match done {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            hooks.note(&format!("TLS handshake failed: {e}; closed"));
            None
        }
        Err(_) => {
            hooks.note("TLS handshake not done by the command deadline; closed");
            None
        }
    }
}

/// Serves the session over `stream` until it ends or asks for TLS.
async fn serve<St, H>(stream: &mut St, s: &mut Session, clock: &Clock, hooks: &mut H) -> Ended
where
    St: AsyncRead + AsyncWrite + Unpin,
    H: ServerHooks,
{
    let mut queue: VecDeque<Output> = VecDeque::new();
    let mut buf = vec![0u8; 8192];
    let write_timeout = hooks.write_timeout();
    'conn: loop {
        while let Some(out) = queue.pop_front().or_else(|| s.poll_output()) {
            match out {
                Output::Send(bytes) => {
                    hooks.server_bytes(&bytes);
                    if !write(stream, &bytes, write_deadline(s, clock, write_timeout)).await {
                        hooks.note("dropped: the client does not take its replies");
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
                }
                Output::Body(piece) => hooks.body_piece(piece).await,
                Output::DropBody => hooks.drop_body().await,
                Output::Close => {
                    let _ = stream.shutdown().await;
                    break 'conn;
                }
                Output::StartTls => return Ended::StartTls,
            }
            let failed = s.take_auth_failures();
            if failed > 0 {
                // The 535 is out; the next command waits for the pause.
                let t = hooks.auth_failed(s.peer().ip, failed, s.auth_failures());
                if t.refuse {
                    s.refuse_auth();
                }
                if !t.pause.is_zero() {
                    let mut until = clock.instant(clock.now()) + t.pause;
                    if let Some(d) = s.poll_timeout() {
                        until = until.min(clock.instant(d));
                    }
                    tokio::time::sleep_until(until).await;
                }
            }
            let slow = s.take_slow_errors();
            if slow > 0 {
                // Past the soft error limit: the next command waits.
                let pause = hooks.error_delay().saturating_mul(slow);
                if !pause.is_zero() {
                    let mut until = clock.instant(clock.now()) + pause;
                    if let Some(d) = s.poll_timeout() {
                        until = until.min(clock.instant(d));
                    }
                    tokio::time::sleep_until(until).await;
                }
            }
        }
        let deadline = s.poll_timeout();
        // Held commands are served as their replies are taken, above; the
        // client is not read meanwhile.
        let reading = s.wants_input() || deadline.is_none();
        tokio::select! {
            biased;
            r = stream.read(&mut buf), if reading => match r {
                Ok(0) | Err(_) => break 'conn,
                Ok(n) => {
                    hooks.client_bytes(&buf[..n]);
                    if hooks.auth_refused(s.peer().ip) {
                        s.refuse_auth();
                    }
                    s.handle_input(clock.now(), &buf[..n]);
                }
            },
            _ = sleep_until(deadline.map(|d| clock.instant(d))) => {
                s.handle_timeout(clock.now());
            }
        }
    }
    Ended::Closed
}
