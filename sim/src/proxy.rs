//! The proxy host of the proxy seeds (`swarm/proxy.rs`): it takes the
//! outsiders' connections, opens one to the relay for each, names the
//! client (a PROXY protocol header, or XCLIENT) and then passes the bytes
//! on both ways, as HAProxy or an SMTP proxy in front of a relay does. The
//! misconfigured one names nobody, as Docker's userland proxy does.
//!
//! It tells the world which client each of its connections to the relay
//! carries (its own address and port → the client's address): that is the
//! truth the checkers judge by, whatever the relay was told.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use relayguard_core::proxy::{encode_v1, encode_v2};
use relayguard_core::whole_reply_len;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

use crate::actors::connect;
use crate::options::{GREETING_WAIT, PORT, RELAY};
use crate::swarm::Proxying;
use crate::world::Shared;

/// The proxy's accept loop, for the whole run.
pub(crate) async fn proxy(world: Shared, proxying: Proxying) -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), PORT)).await?;
    loop {
        let (client, from) = listener.accept().await?;
        tokio::task::spawn_local(forward(world.clone(), proxying, client, from));
    }
}

/// One client's connection: a connection to the relay for it, the client
/// named on it, then the bytes both ways until either side closes.
async fn forward(world: Shared, proxying: Proxying, client: TcpStream, from: SocketAddr) {
    let Some(mut relay) = connect(RELAY.into()).await else {
        // The relay is down or cut off: the client sees its connection
        // closed, as behind a real proxy.
        return;
    };
    if let Ok(local) = relay.local_addr() {
        world.borrow_mut().behind_proxy.insert(local, from.ip());
    }
    let to = SocketAddr::new(RELAY.into(), PORT);
    let (named, ok) = match proxying {
        Proxying::Header(1) => (
            "proxy: PROXY v1 header",
            send(&mut relay, &encode_v1(from, to)).await,
        ),
        Proxying::Header(_) => (
            "proxy: PROXY v2 header",
            send(&mut relay, &encode_v2(from, to, false)).await,
        ),
        Proxying::Xclient => ("proxy: XCLIENT", xclient(&mut relay, from.ip()).await),
        Proxying::Misconfigured | Proxying::Direct => ("proxy: forwarded without a header", true),
    };
    if !ok {
        return;
    }
    {
        let mut w = world.borrow_mut();
        *w.fired.entry(named.to_string()).or_insert(0) += 1;
        w.event(&format!("{named} for {from}"));
    }
    pipe(&world, client, relay, proxying == Proxying::Xclient).await;
}

async fn send(relay: &mut TcpStream, bytes: &[u8]) -> bool {
    relay.write_all(bytes).await.is_ok()
}

/// Takes the relay's greeting and EHLO reply itself, then sends
/// `XCLIENT ADDR=`: the relay's answer to it (a new greeting, or a
/// refusal) is the first thing the client hears.
async fn xclient(relay: &mut TcpStream, client: IpAddr) -> bool {
    let addr = match client {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("IPV6:{a}"),
    };
    reply(relay).await
        && send(relay, b"EHLO proxy.example\r\n").await
        && reply(relay).await
        && send(relay, format!("XCLIENT ADDR={addr}\r\n").as_bytes()).await
}

/// Reads one whole reply; `false` if the connection ends first or none
/// comes within [`GREETING_WAIT`].
async fn reply(relay: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while whole_reply_len(&got).is_none() {
        match tokio::time::timeout(GREETING_WAIT, relay.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    true
}

/// The bytes both ways; each direction's end is passed on as a shutdown.
/// An XCLIENT proxy drops the connection at a client line that starts with
/// XCLIENT: only the proxy may name the client.
async fn pipe(world: &Shared, client: TcpStream, relay: TcpStream, filter: bool) {
    let (mut cr, mut cw) = client.into_split();
    let (mut rr, mut rw) = relay.into_split();
    let up = async {
        let mut lines = LineStarts::default();
        let mut buf = [0u8; 4096];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let out = if filter {
                match lines.pass(&buf[..n]) {
                    Some(out) => out,
                    None => {
                        let mut w = world.borrow_mut();
                        *w.fired
                            .entry("proxy: client's XCLIENT dropped".into())
                            .or_insert(0) += 1;
                        w.event("proxy drops a client's XCLIENT");
                        break;
                    }
                }
            } else {
                buf[..n].to_vec()
            };
            if rw.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = rw.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut rr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Passes client bytes on, holding the first octets of each line until it
/// is clear that the line is not an XCLIENT command. Line by line only: a
/// body line that starts with "XCLIENT" is dropped too, which no simulated
/// sender writes.
#[derive(Default)]
struct LineStarts {
    held: Vec<u8>,
    mid_line: bool,
}

impl LineStarts {
    /// The octets to pass on, or `None` once a line starts with XCLIENT.
    fn pass(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        const VERB: &[u8] = b"XCLIENT";
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.mid_line {
                out.push(b);
                self.mid_line = b != b'\n';
                continue;
            }
            self.held.push(b);
            let n = self.held.len();
            if self.held.eq_ignore_ascii_case(&VERB[..n]) {
                if n == VERB.len() {
                    return None;
                }
                continue;
            }
            out.append(&mut self.held);
            self.mid_line = b != b'\n';
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::LineStarts;

    #[test]
    fn an_xclient_line_is_stopped_however_it_is_split() {
        let input = b"EHLO x\r\nxclient ADDR=10.1.7.10\r\n";
        for cut in 0..=input.len() {
            let mut l = LineStarts::default();
            let a = l.pass(&input[..cut]);
            let b = a.as_ref().and_then(|_| l.pass(&input[cut..]));
            assert_eq!(b, None, "cut at {cut}");
        }
    }

    #[test]
    fn other_lines_pass_whole_however_they_are_split() {
        let input = b"EHLO x\r\nXCLIEN\r\nX\r\nMAIL FROM:<a@b>\r\nDATA\r\nXCL body\r\n.\r\n";
        for cut in 0..=input.len() {
            let mut l = LineStarts::default();
            let mut out = l.pass(&input[..cut]).expect("no XCLIENT line");
            out.extend(l.pass(&input[cut..]).expect("no XCLIENT line"));
            assert_eq!(out, input.to_vec(), "cut at {cut}");
        }
    }
}
