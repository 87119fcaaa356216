//! Replays a transcript over TCP against a live server — relayguard's own
//! `serve`, or any relay — with the wire oracle judging what came back.
//!
//! The client's source address can be chosen, so that a loopback test can be
//! a LAN host from one address and an outsider from another. The
//! transcript's `@peer` cannot be honoured over a real network; the oracle
//! judges with the address actually used.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
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

/// Reads whole replies off a stream.
struct Reader {
    stream: TcpStream,
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
/// the client really has.
pub fn replay(
    t: &Transcript,
    config: &Config,
    target: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<Outcome, String> {
    let stream = connect(target, source, timeout).map_err(|e| format!("connect to {target}: {e}"))?;
    let peer = stream.local_addr().map_err(|e| e.to_string())?.ip();
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = Reader {
        stream,
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
            Step::Tls { line } => {
                if !chunk.is_empty() {
                    oracle.client_bytes(&chunk);
                    if writer.write_all(&std::mem::take(&mut chunk)).is_err() {
                        open = false;
                        break;
                    }
                }
                // A server that refused STARTTLS has no handshake to do:
                // the rest goes on in plain text and is judged as sent.
                if last_reply_code(&sent) == Some(220) {
                    return Err(format!(
                        "line {line}: T: handshake: the server accepted STARTTLS, and replay --target does not do TLS yet"
                    ));
                }
            }
            Step::Reply { .. } if first_reply_is_greeting => first_reply_is_greeting = false,
            Step::Reply { .. } => {
                if !chunk.is_empty() {
                    oracle.client_bytes(&chunk);
                    if writer.write_all(&std::mem::take(&mut chunk)).is_err() {
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
    if open && !chunk.is_empty() {
        oracle.client_bytes(&chunk);
        let _ = writer.write_all(&chunk);
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
