//! Replays a transcript over TCP against a live server — relayguard's own
//! `serve`, or any relay — with the wire oracle judging what came back.
//!
//! The client's source address can be chosen, so that a loopback test can be
//! a LAN host from one address and an outsider from another. The
//! transcript's `@peer` cannot be honoured over a real network; the oracle
//! judges with the address actually used.
//!
//! A `T: handshake` step after a STARTTLS answered `220` is a real TLS
//! handshake (rustls, ring), and the rest of the transcript goes over it.
//! The server's certificate is not verified: the point is what the server
//! does with the octets around the handshake, not who it is.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use relayguard_core::Config;
use relayguard_core::check::oracle::Oracle;
use relayguard_core::check::replay::Outcome;
use relayguard_core::check::transcript::{Step, Transcript};
use relayguard_core::whole_reply_len;
use socket2::{Domain, Socket, Type};

/// Connects from `source` (any local address if `None`) to `target`.
pub fn connect(target: SocketAddr, source: Option<IpAddr>, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    if let Some(ip) = source {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&target.into(), timeout)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// The connection: plain TCP until a handshake, then TLS over it; gone
/// after a failed handshake.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Gone,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Gone => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

/// The client side of TLS for `replay --target`: ring, no certificate
/// verification.
fn tls_client() -> Result<Arc<rustls::ClientConfig>, String> {
    relayguard_node::tls::client_config(relayguard_node::tls::ring()).map_err(|e| e.to_string())
}

/// Performs the TLS handshake on a plain connection, to completion.
fn handshake(
    mut tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    target: SocketAddr,
) -> Result<Conn, String> {
    let name = relayguard_node::tls::server_name(&target.ip().to_string());
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("TLS handshake with {target}: {e}"))?;
    }
    Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// Reads whole replies off a stream.
struct Reader {
    stream: Conn,
    buf: Vec<u8>,
    closed: bool,
}

impl Reader {
    /// The next reply as raw bytes, or `None` if the server closed or went
    /// quiet past the timeout.
    fn reply(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = whole_reply_len(&self.buf) {
                return Some(self.buf.drain(..end).collect());
            }
            if self.closed {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The code of the last whole reply in `sent`.
fn last_reply_code(sent: &[u8]) -> Option<u16> {
    let text = sent.strip_suffix(b"\r\n")?;
    let start = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    std::str::from_utf8(text.get(start..start + 3)?)
        .ok()?
        .parse()
        .ok()
}

/// Sends the transcript's client steps, reading one reply per `S:` step,
/// and returns the oracle's verdict. Reply expectations are not checked:
/// a live server's replies depend on its configuration and on the address
/// the client really has. At `T: handshake`, if the last reply was a
/// `220` (to STARTTLS), the handshake is done and the rest goes over TLS;
/// a server that refused STARTTLS is spoken to in plain text, as a client
/// doing opportunistic TLS would. A failed handshake ends the session
/// there, judged on what was sent so far.
pub fn replay(
    t: &Transcript,
    config: &Config,
    target: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<Outcome, String> {
    let stream = connect(target, source, timeout).map_err(|e| format!("connect to {target}: {e}"))?;
    let peer = stream.local_addr().map_err(|e| e.to_string())?.ip();
    let mut tls_config = None;
    let mut reader = Reader {
        stream: Conn::Plain(stream),
        buf: Vec::new(),
        closed: false,
    };
    let mut oracle = Oracle::new(config, peer);
    let mut sent = Vec::new();
    let take_reply = |reader: &mut Reader, oracle: &mut Oracle, sent: &mut Vec<u8>| match reader.reply() {
        Some(r) => {
            oracle.server_bytes(&r);
            sent.extend_from_slice(&r);
            true
        }
        None => false,
    };
    // The greeting, checked or not.
    take_reply(&mut reader, &mut oracle, &mut sent);
    let mut first_reply_is_greeting = matches!(t.steps.first(), Some(Step::Reply { .. }));
    let mut chunk = Vec::new();
    let mut open = true;
    for step in &t.steps {
        match step {
            Step::Send { bytes, .. } => chunk.extend_from_slice(bytes),
            Step::Tls { .. } => {
                if !chunk.is_empty() {
                    oracle.client_bytes(&chunk);
                    if reader.stream.write_all(&std::mem::take(&mut chunk)).is_err() {
                        open = false;
                        break;
                    }
                }
                // A server that refused STARTTLS has no handshake to do.
                if last_reply_code(&sent) != Some(220) {
                    continue;
                }
                // Anything read past the 220 came in plain text before the
                // handshake: the oracle judges it as such, and it is not
                // read again over TLS.
                let early = std::mem::take(&mut reader.buf);
                if !early.is_empty() {
                    oracle.server_bytes(&early);
                    sent.extend_from_slice(&early);
                }
                let tcp = match std::mem::replace(&mut reader.stream, Conn::Gone) {
                    Conn::Plain(tcp) => tcp,
                    // Already TLS: a second handshake has nothing to do.
                    tls => {
                        reader.stream = tls;
                        continue;
                    }
                };
                let config = match &tls_config {
                    Some(c) => Arc::clone(c),
                    None => tls_config.insert(tls_client()?).clone(),
                };
                match handshake(tcp, config, target) {
                    Ok(conn) => {
                        reader.stream = conn;
                        oracle.tls_established();
                    }
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            }
            Step::Reply { .. } if first_reply_is_greeting => first_reply_is_greeting = false,
            Step::Reply { .. } => {
                if !chunk.is_empty() {
                    oracle.client_bytes(&chunk);
                    if reader.stream.write_all(&std::mem::take(&mut chunk)).is_err() {
                        open = false;
                    }
                }
                if !open || !take_reply(&mut reader, &mut oracle, &mut sent) {
                    open = false;
                    break;
                }
            }
        }
    }
    if open {
        if !chunk.is_empty() {
            oracle.client_bytes(&chunk);
            let _ = reader.stream.write_all(&chunk);
        }
        // Whatever else the server says, up to its close (after QUIT's 221)
        // or the timeout: replies beyond the client's commands answer
        // something it never sent over this connection, such as octets
        // injected after STARTTLS, and only the oracle can tell.
        while take_reply(&mut reader, &mut oracle, &mut sent) {}
    }
    let verdict = oracle.finish();
    Ok(Outcome {
        mismatches: Vec::new(),
        violations: verdict.violations,
        expectation: None,
        stats: verdict.stats,
        sent,
        truncated: t.truncated,
    })
}
