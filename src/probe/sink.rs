//! The probe's sink: a foreign mail exchanger that accepts everything.
//! The operator routes the target's mail for the test domain to it; a
//! probe message that arrives here has left the target for a foreign
//! destination, which is what a relay is.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest command or content line the sink keeps reading.
const MAX_LINE: u64 = 1 << 20;
/// Most data one message may hold.
const MAX_DATA: usize = 16 << 20;

/// One message the sink received.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// Who sent it (the target, normally).
    pub peer: Option<SocketAddr>,
    /// The envelope sender, as given.
    pub from: String,
    /// The envelope recipients, as given.
    pub rcpts: Vec<String>,
    /// The content as it came over the wire, up to (not including) the
    /// final `.` line: line ends and dot-stuffing exactly as sent.
    pub data: Vec<u8>,
}

impl Received {
    /// The header block: the data up to the first empty line.
    pub fn header(&self) -> &[u8] {
        header_block(&self.data)
    }

    /// Whether the header block carries `X-Relayguard-Probe: token`.
    pub fn has_token(&self, token: &str) -> bool {
        has_token(&self.data, token)
    }
}

/// The header block of a message: up to the first empty line (CRLF CRLF,
/// or LF LF), or all of it.
pub fn header_block(data: &[u8]) -> &[u8] {
    let crlf = find(data, b"\r\n\r\n");
    let lf = find(data, b"\n\n");
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(data.len()),
    };
    &data[..end]
}

/// Whether the header block of `data` has the probe header with `token`
/// (a bounce that quotes a probe message carries it in its body, not in
/// its header, and does not count).
pub fn has_token(data: &[u8], token: &str) -> bool {
    let needle = format!("X-Relayguard-Probe: {token}");
    header_block(data)
        .split(|&b| b == b'\n')
        .any(|l| l.trim_ascii_end() == needle.as_bytes())
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Store {
    messages: Mutex<Vec<Received>>,
    arrived: Condvar,
}

/// A running sink. It serves until the process ends.
#[derive(Clone)]
pub struct Sink {
    addr: SocketAddr,
    store: Arc<Store>,
}

impl Sink {
    /// Listens on `addr` and serves every connection on its own thread.
    pub fn start(addr: SocketAddr) -> std::io::Result<Sink> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let s = store.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        });
        Ok(Sink { addr, store })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.store.messages.lock().expect("sink lock").clone()
    }

    /// Waits until every token has arrived (in a message's header) or the
    /// deadline passes; returns the messages received by then.
    pub fn wait_for(&self, tokens: &[String], deadline: Instant) -> Vec<Received> {
        let mut msgs = self.store.messages.lock().expect("sink lock");
        loop {
            let all = tokens.iter().all(|t| msgs.iter().any(|m| m.has_token(t)));
            let left = deadline.saturating_duration_since(Instant::now());
            if all || left.is_zero() {
                return msgs.clone();
            }
            msgs = self
                .store
                .arrived
                .wait_timeout(msgs, left.min(Duration::from_millis(500)))
                .expect("sink lock")
                .0;
        }
    }
}

fn serve(stream: TcpStream, store: &Store) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let peer = stream.peer_addr().ok();
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 relayguard-probe-sink ESMTP\r\n")?;
    let mut msg = Received {
        peer,
        ..Received::default()
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if std::io::Read::take(&mut input, MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let verb = text.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-relayguard-probe-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "MAIL" => {
                msg.from = text.trim_end().to_string();
                msg.rcpts.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                msg.rcpts.push(text.trim_end().to_string());
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                out.write_all(b"354 go ahead\r\n")?;
                msg.data = read_data(&mut input)?;
                let done = std::mem::replace(
                    &mut msg,
                    Received {
                        peer,
                        ..Received::default()
                    },
                );
                store.messages.lock().expect("sink lock").push(done);
                store.arrived.notify_all();
                b"250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            "RSET" => {
                msg.from.clear();
                msg.rcpts.clear();
                b"250 2.0.0 ok\r\n"
            }
            _ => b"250 2.0.0 ok\r\n",
        };
        out.write_all(reply)?;
    }
}

/// Reads content up to the `.` line that only CRLF.CRLF makes (the sink is
/// strict: it must see what the target really sends).
fn read_data<R: BufRead>(input: &mut R) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if std::io::Read::take(&mut *input, MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let at_line_start = data.is_empty() || data.ends_with(b"\r\n");
        if at_line_start && line == b".\r\n" {
            return Ok(data);
        }
        if data.len() < MAX_DATA {
            data.extend_from_slice(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_token_counts_in_the_header_only() {
        let m = b"From: x\r\nX-Relayguard-Probe: t1\r\n\r\nbody X-Relayguard-Probe: t2\r\n";
        assert!(has_token(m, "t1"));
        assert!(!has_token(m, "t2"));
        assert!(!has_token(m, "t"));
        let bounce = b"From: MAILER-DAEMON\r\n\r\n--b\r\nX-Relayguard-Probe: t1\r\n";
        assert!(!has_token(bounce, "t1"));
    }

    #[test]
    fn the_sink_keeps_what_it_receives_byte_for_byte() {
        let sink = Sink::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = TcpStream::connect(sink.addr()).unwrap();
        s.write_all(
            b"EHLO t\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nX-Relayguard-Probe: tok\r\n\r\nbare\rcr\r\n.\n\r\n.\r\nQUIT\r\n",
        )
        .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert!(all.ends_with(b"250 2.0.0 queued\r\n221 2.0.0 bye\r\n"));
        let got = sink.wait_for(&["tok".into()], Instant::now() + Duration::from_secs(10));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpts, vec!["RCPT TO:<c@d>".to_string()]);
        assert_eq!(got[0].data, b"X-Relayguard-Probe: tok\r\n\r\nbare\rcr\r\n.\n\r\n");
    }
}
