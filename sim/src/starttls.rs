//! The actors' side of STARTTLS: the upgrade of a raw connection, and the
//! injector (CVE-2011-0411, the 2021 "NO STARTTLS" study): commands
//! written in the same packet as `STARTTLS`, which a server that buffers
//! its input runs after the handshake as if they had come over TLS.
//!
//! The injector does the handshake, then stays silent for a while before
//! its own `EHLO`: a relay that ran the plain-text commands answers them in
//! that silence, and the wire oracle, which drops the client's plain-text
//! octets at the handshake, sees replies that answer nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::actors::connect;
use crate::options::{CHUNK_REPLY_WAIT, GREETING_WAIT};
use crate::world::Shared;

/// How long the injector stays silent after the handshake: longer than a
/// reply takes, so that the answers to injected commands land in it.
const SILENCE: Duration = Duration::from_secs(2);

/// One session: EHLO, `STARTTLS` + `injected` in one write, the handshake
/// if the relay answered `220`, silence, then EHLO and QUIT over TLS.
pub(crate) async fn inject(world: &Shared, to: IpAddr, tls: &Arc<rustls::ClientConfig>, injected: &[u8]) {
    let Some(mut s) = connect(to).await else {
        return;
    };
    if read_reply(&mut s, GREETING_WAIT).await.is_none()
        || s.write_all(b"EHLO injector.example\r\n").await.is_err()
        || read_reply(&mut s, CHUNK_REPLY_WAIT).await.is_none()
    {
        return;
    }
    let mut packet = b"STARTTLS\r\n".to_vec();
    packet.extend_from_slice(injected);
    if s.write_all(&packet).await.is_err() {
        return;
    }
    match read_reply(&mut s, CHUNK_REPLY_WAIT).await {
        Some(r) if r.starts_with(b"220") => {}
        // Not offered: the commands run in plain text, as any spammer's
        // would, and are judged so.
        _ => {
            world.borrow_mut().fired("starttls injection, not offered");
            let _ = s.write_all(b"QUIT\r\n").await;
            let _ = read_reply(&mut s, CHUNK_REPLY_WAIT).await;
            return;
        }
    }
    let Some(mut t) = handshake(tls, s).await else {
        world.borrow_mut().fired("starttls injection, handshake failed");
        return;
    };
    world.borrow_mut().fired("starttls injection, handshake done");
    // Whatever comes in the silence answers the injected commands.
    let _ = read_reply(&mut t, SILENCE).await;
    if t.write_all(b"EHLO injector.example\r\n").await.is_ok() {
        let _ = read_reply(&mut t, CHUNK_REPLY_WAIT).await;
    }
    if t.write_all(b"QUIT\r\n").await.is_ok() {
        let _ = read_reply(&mut t, CHUNK_REPLY_WAIT).await;
    }
}

/// A client's TLS handshake with the relay, over `s`.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &Arc<rustls::ClientConfig>,
    s: S,
) -> Option<tokio_rustls::client::TlsStream<S>> {
    let name = rustls::pki_types::ServerName::try_from(crate::tls::RELAY_NAME).expect("a DNS name");
    tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, s)
        .await
        .ok()
}

/// `STARTTLS` and the handshake, if `ehlo` (the reply to EHLO) offers it:
/// the TLS stream, or the plain one when not offered, or `None` when the
/// relay refused or the handshake failed (the connection is spent).
pub(crate) async fn upgrade(
    tls: &Arc<rustls::ClientConfig>,
    mut s: turmoil::net::TcpStream,
    ehlo: &[u8],
) -> Option<Upgraded> {
    let offered = ehlo
        .split(|&b| b == b'\n')
        .any(|l| l.len() > 4 && l[4..].to_ascii_uppercase().starts_with(b"STARTTLS"));
    if !offered {
        return Some(Upgraded::Plain(s));
    }
    s.write_all(b"STARTTLS\r\n").await.ok()?;
    match read_reply(&mut s, CHUNK_REPLY_WAIT).await {
        Some(r) if r.starts_with(b"220") => handshake(tls, s).await.map(|t| Upgraded::Tls(Box::new(t))),
        _ => None,
    }
}

/// A connection to the relay after [`upgrade`].
pub(crate) enum Upgraded {
    Plain(turmoil::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<turmoil::net::TcpStream>>),
}

impl Upgraded {
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Upgraded::Tls(_))
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Upgraded::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Upgraded::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Upgraded::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Upgraded::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Upgraded::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Upgraded::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Upgraded::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Upgraded::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What arrived until a whole reply did, or `None` if the connection closed or
/// nothing came within `wait`.
pub(crate) async fn read_reply<S: AsyncRead + Unpin>(s: &mut S, wait: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                got.extend_from_slice(&buf[..n]);
                if relayguard_core::whole_reply_len(&got).is_some() {
                    return Some(got);
                }
            }
            _ => return None,
        }
    }
}
