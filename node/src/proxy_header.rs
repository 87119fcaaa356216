//! The PROXY protocol header on a connection from a trusted proxy: read
//! before the session starts, within the command timeout, and never a byte
//! more than the header (what follows is the client's SMTP).

use std::net::IpAddr;
use std::time::Duration;

use relayguard_core::proxy::{self, ProxyError};
use relayguard_core::{Peer, Policy};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What reading the header gave: the client it names and the octets that
/// came after it in the same reads, or the reply that refuses the
/// connection (malformed, truncated, `LOCAL`, or none in time).
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    policy: &Policy,
    socket: IpAddr,
) -> Result<(Peer, Vec<u8>), Vec<u8>> {
    let timeout = Duration::from_secs(policy.config().limits.command_timeout_secs);
    let mut held = Vec::new();
    let read = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 512];
        loop {
            match proxy::parse(&held) {
                Ok(Some(found)) => return Ok(found),
                Err(e) => return Err(e),
                Ok(None) => {}
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    return Err(ProxyError::Malformed(format!(
                        "connection closed after {} octets of the header",
                        held.len()
                    )));
                }
                Ok(n) => held.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(ProxyError::Malformed(format!(
            "no complete header within {} s",
            timeout.as_secs()
        )))
    });
    match read {
        Ok((header, len)) => {
            let peer = proxy::accept(policy, socket, Ok(header))?;
            Ok((peer, held.split_off(len)))
        }
        Err(ProxyError::NotAHeader) => Err(proxy::refusal(
            policy,
            "a PROXY protocol header is required first",
        )),
        Err(e) => Err(proxy::refusal(policy, &e.to_string())),
    }
}

/// How long the injected bug `trust-any-proxy-header` waits for a header
/// before it greets a client that sent none: short, so that every client
/// that waits for the greeting, as SMTP clients do, still gets served.
pub(crate) const OPTIONAL_HEADER_WAIT: Duration = Duration::from_secs(1);

/// The injected bug `trust-any-proxy-header` on a connection from anyone:
/// a PROXY header that comes first (within [`OPTIONAL_HEADER_WAIT`]) is
/// believed; anything else is the client's SMTP, served as from `socket`.
pub(crate) async fn read_any_header<S: AsyncRead + Unpin>(stream: &mut S, socket: IpAddr) -> (Peer, Vec<u8>) {
    let mut held = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match proxy::parse(&held) {
            Ok(Some((proxy::ProxyHeader::Proxied { source, .. }, len))) => {
                let peer = Peer {
                    ip: source.ip().to_canonical(),
                    via: Some(socket),
                };
                return (peer, held.split_off(len));
            }
            Ok(None) if held.is_empty() || proxy::looks_like_header(&held) => {}
            _ => return (Peer::direct(socket), held),
        }
        match tokio::time::timeout(OPTIONAL_HEADER_WAIT, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => held.extend_from_slice(&buf[..n]),
            _ => return (Peer::direct(socket), held),
        }
    }
}
