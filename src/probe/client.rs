//! The probe's SMTP client: it sends what a transcript sends and reads
//! *every* reply the server gives, not one per `S:` line.
//!
//! After the replies a step expects, the client keeps reading until the
//! server has been quiet for a short window: replies beyond those expected
//! (the `250`s of commands smuggled inside a message, the answers to DATA
//! content sent before `354`) are recorded as evidence. Where a reply is
//! expected the client waits for it or for the close, up to the reply
//! timeout: a server that never greets, closes before answering, or stops
//! answering makes the session an error, never a pass.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use relayguard_core::whole_reply_len;

/// A reply longer than this without its end is cut and kept as is: a
/// server streaming garbage cannot grow the buffer without bound.
const MAX_PENDING: usize = 64 * 1024;

/// How long the client waits.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// For a reply that is expected (and for the connection).
    pub reply: Duration,
    /// The quiet window after the expected replies: more replies are read
    /// until none has come for this long.
    pub quiet: Duration,
}

/// What the next read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// A whole reply (all its lines, with their line ends).
    Reply(Vec<u8>),
    /// The server closed the connection (or it broke).
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// A connection and the bytes read but not yet cut into replies.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Conn {
    /// Connects from `source` (any local address if `None`).
    /// Every read sets its own timeout (see [`Conn::next`]).
    pub fn open(target: SocketAddr, source: Option<IpAddr>, timeout: Duration) -> std::io::Result<Conn> {
        Ok(Conn::from_stream(crate::remote::connect(
            target, source, timeout,
        )?))
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// The next whole reply, waiting at most `wait` for it. Bytes left when
    /// the server closes are returned as a last (incomplete) reply.
    pub fn next(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = whole_reply_len(&self.buf) {
                return Got::Reply(self.buf.drain(..end).collect());
            }
            if self.buf.len() >= MAX_PENDING {
                return Got::Reply(std::mem::take(&mut self.buf));
            }
            if self.closed {
                if self.buf.is_empty() {
                    return Got::Closed;
                }
                return Got::Reply(std::mem::take(&mut self.buf));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Silent;
            }
            if self.stream.set_read_timeout(Some(left)).is_err() {
                self.closed = true;
                continue;
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }
}

/// One round: bytes sent, the number of replies the transcript expects for
/// them, and every reply read until the server went quiet.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The bytes sent (may be several pipelined commands, or content).
    pub sent: Vec<u8>,
    /// How many replies the transcript expects for them.
    pub expected: usize,
    /// Every reply read for them, expected or not.
    pub replies: Vec<Vec<u8>>,
}

/// What happened in one session.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// The local address the session came from.
    pub source: Option<IpAddr>,
    /// The greeting.
    pub greeting: Option<Vec<u8>>,
    /// The rounds, in order.
    pub exchanges: Vec<Exchange>,
    /// The server closed the connection.
    pub closed: bool,
    /// Why the session could not be judged: no greeting, a close or silence
    /// where a reply was due, a failed connect.
    pub error: Option<String>,
}

impl Record {
    /// Replies beyond those expected, over the whole session.
    pub fn extra_replies(&self) -> usize {
        self.exchanges
            .iter()
            .map(|e| e.replies.len().saturating_sub(e.expected))
            .sum()
    }

    /// Every reply line longer than `limit` octets with its line end.
    pub fn long_lines(&self, limit: usize) -> Vec<usize> {
        let all = self
            .greeting
            .iter()
            .chain(self.exchanges.iter().flat_map(|e| e.replies.iter()));
        all.flat_map(|r| r.split_inclusive(|&b| b == b'\n').map(<[u8]>::len))
            .filter(|&n| n > limit)
            .collect()
    }

    /// The last reply received, if any.
    pub fn last_reply(&self) -> Option<&[u8]> {
        self.exchanges
            .iter()
            .rev()
            .flat_map(|e| e.replies.iter().rev())
            .next()
            .or(self.greeting.as_ref())
            .map(Vec::as_slice)
    }
}

/// The three-digit code of a reply, if it starts with one.
pub fn code(reply: &[u8]) -> Option<u16> {
    let d = reply.get(..3)?;
    if !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0')))
}

/// Whether the bytes are a QUIT command: its reply is not evidence, and a
/// server that does not answer it has not failed the audit.
fn is_quit(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"QUIT")
}

/// A close after one of these is the server ending the session on purpose.
fn closing_reply(reply: Option<&[u8]>) -> bool {
    matches!(reply.and_then(code), Some(221 | 421 | 554))
}

/// Printable form of bytes for messages: escapes as in `C~` lines.
pub fn shown(bytes: &[u8]) -> String {
    let s = relayguard_core::check::transcript::escape(bytes);
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// A session in progress: the connection and its record.
pub struct Dialog {
    conn: Option<Conn>,
    /// What happened so far.
    pub record: Record,
    timing: Timing,
}

impl Dialog {
    /// Connects and reads the greeting. A failed connect, a close or
    /// silence instead of a greeting is recorded as the error.
    pub fn open(target: SocketAddr, source: Option<IpAddr>, timing: Timing) -> Dialog {
        let mut record = Record {
            source,
            ..Record::default()
        };
        let conn = match Conn::open(target, source, timing.reply) {
            Ok(c) => c,
            Err(e) => {
                let from = source.map(|s| format!(" from {s}")).unwrap_or_default();
                record.error = Some(format!("cannot connect to {target}{from}: {e}"));
                return Dialog {
                    conn: None,
                    record,
                    timing,
                };
            }
        };
        record.source = conn.stream.local_addr().ok().map(|a| a.ip());
        Dialog::greet(conn, record, timing)
    }

    /// Reads the greeting on an open connection.
    pub fn greet(mut conn: Conn, mut record: Record, timing: Timing) -> Dialog {
        match conn.next(timing.reply) {
            Got::Reply(r) => record.greeting = Some(r),
            Got::Closed => record.error = Some("the server closed the connection without a greeting".into()),
            Got::Silent => {
                record.error = Some(format!(
                    "no greeting within {} s (the server accepts connections but does not talk)",
                    timing.reply.as_secs_f32()
                ))
            }
        }
        Dialog {
            conn: Some(conn),
            record,
            timing,
        }
    }

    /// Whether the session can go on: connected, greeted, no error, not
    /// closed.
    pub fn live(&self) -> bool {
        self.conn.is_some() && self.record.error.is_none() && !self.record.closed
    }

    /// Sends `bytes`, waits for `expected` replies, then reads more until
    /// the server is quiet. Returns the replies of this round (empty when
    /// the session is over). Silence where a reply is due is an error; so
    /// is a close, unless the server had said it was closing.
    pub fn exchange(&mut self, bytes: &[u8], expected: usize) -> Vec<Vec<u8>> {
        if !self.live() {
            return Vec::new();
        }
        let conn = self.conn.as_mut().expect("live");
        let mut ex = Exchange {
            sent: bytes.to_vec(),
            expected,
            replies: Vec::new(),
        };
        let quit = is_quit(bytes);
        if !bytes.is_empty() && conn.send(bytes).is_err() {
            // The server closed while we sent: what it said before is read
            // below, and the close judged like any other.
            conn.closed = true;
        }
        let mut error = None;
        let mut closed = false;
        for _ in 0..expected {
            // A QUIT's reply is not evidence: a short wait for it.
            let wait = if quit {
                self.timing.reply.min(self.timing.quiet * 4)
            } else {
                self.timing.reply
            };
            match conn.next(wait) {
                Got::Reply(r) => ex.replies.push(r),
                Got::Closed => {
                    closed = true;
                    let last = ex.replies.last().map(Vec::as_slice).or(self.record.last_reply());
                    if !quit && !closing_reply(last) {
                        error = Some(format!(
                            "the server closed the connection instead of answering `{}`",
                            shown(bytes)
                        ));
                    }
                    break;
                }
                Got::Silent => {
                    if !quit {
                        error = Some(format!(
                            "no reply within {} s to `{}` (the server stopped answering)",
                            self.timing.reply.as_secs_f32(),
                            shown(bytes)
                        ));
                    }
                    break;
                }
            }
        }
        if error.is_none() && !closed {
            loop {
                match conn.next(self.timing.quiet) {
                    Got::Reply(r) => ex.replies.push(r),
                    Got::Closed => {
                        closed = true;
                        break;
                    }
                    Got::Silent => break,
                }
            }
        }
        let replies = ex.replies.clone();
        self.record.exchanges.push(ex);
        self.record.closed |= closed;
        if error.is_some() {
            self.record.error = error;
        }
        replies
    }

    /// The finished record.
    pub fn finish(self) -> Record {
        self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn timing() -> Timing {
        Timing {
            reply: Duration::from_secs(5),
            quiet: Duration::from_millis(100),
        }
    }

    /// A server that runs `script` on the accepted connection.
    fn server(script: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            script(s);
        });
        addr
    }

    fn read_line(s: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap_or(0) == 1 {
            out.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
        }
        out
    }

    #[test]
    fn every_reply_is_read_and_extras_are_counted() {
        let addr = server(|mut s| {
            s.write_all(b"220 hi\r\n").unwrap();
            read_line(&mut s);
            // One command, three replies: the last two are extra.
            s.write_all(b"250-a\r\n250 b\r\n250 c\r\n").unwrap();
            s.write_all(b"354 go\r\n").unwrap();
            read_line(&mut s);
            s.write_all(b"221 bye\r\n").unwrap();
        });
        let mut d = Dialog::open(addr, None, timing());
        assert_eq!(d.record.greeting.as_deref(), Some(&b"220 hi\r\n"[..]));
        let r = d.exchange(b"EHLO x\r\n", 1);
        assert_eq!(
            r,
            vec![
                b"250-a\r\n250 b\r\n".to_vec(),
                b"250 c\r\n".to_vec(),
                b"354 go\r\n".to_vec()
            ]
        );
        d.exchange(b"QUIT\r\n", 1);
        let rec = d.finish();
        assert_eq!(rec.extra_replies(), 2);
        assert!(rec.error.is_none(), "{:?}", rec.error);
    }

    #[test]
    fn a_server_that_never_greets_is_an_error() {
        let addr = server(|mut s| {
            // Holds the connection open and says nothing until the client
            // has given up (it closes, the read returns).
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        });
        let t = Timing {
            reply: Duration::from_millis(300),
            quiet: Duration::from_millis(50),
        };
        let d = Dialog::open(addr, None, t);
        assert!(!d.live());
        assert!(d.record.error.as_deref().unwrap().contains("no greeting"));
    }

    #[test]
    fn a_close_before_the_greeting_and_a_close_instead_of_a_reply_are_errors() {
        let addr = server(drop);
        let d = Dialog::open(addr, None, timing());
        assert!(d.record.error.as_deref().unwrap().contains("without a greeting"));

        let addr = server(|mut s| {
            s.write_all(b"220 hi\r\n").unwrap();
            read_line(&mut s);
        });
        let mut d = Dialog::open(addr, None, timing());
        d.exchange(b"EHLO x\r\n", 1);
        assert!(
            d.record
                .error
                .as_deref()
                .unwrap()
                .contains("closed the connection instead")
        );
    }

    #[test]
    fn a_close_after_421_is_the_server_ending_the_session() {
        let addr = server(|mut s| {
            s.write_all(b"220 hi\r\n").unwrap();
            read_line(&mut s);
            s.write_all(b"421 too many errors\r\n").unwrap();
        });
        let mut d = Dialog::open(addr, None, timing());
        d.exchange(b"EHLO x\r\n", 1);
        d.exchange(b"MAIL FROM:<>\r\n", 1);
        let rec = d.finish();
        assert!(rec.error.is_none(), "{:?}", rec.error);
        assert!(rec.closed);
    }

    #[test]
    fn silence_where_a_reply_is_due_is_an_error_but_not_after_quit() {
        let addr = server(|mut s| {
            s.write_all(b"220 hi\r\n").unwrap();
            read_line(&mut s);
            read_line(&mut s);
            // Holds the connection until the client gives up.
            read_line(&mut s);
        });
        let t = Timing {
            reply: Duration::from_millis(300),
            quiet: Duration::from_millis(50),
        };
        let mut d = Dialog::open(addr, None, t);
        d.exchange(b"QUIT\r\n", 1);
        assert!(d.record.error.is_none());
        d.exchange(b"NOOP\r\n", 1);
        assert!(d.record.error.as_deref().unwrap().contains("stopped answering"));
    }

    #[test]
    fn reply_codes_and_long_lines() {
        assert_eq!(code(b"250 ok\r\n"), Some(250));
        assert_eq!(code(b"25"), None);
        assert_eq!(code(b"abc"), None);
        let rec = Record {
            greeting: Some(format!("220 {}\r\n", "x".repeat(600)).into_bytes()),
            ..Record::default()
        };
        assert_eq!(rec.long_lines(512), vec![606]);
    }
}
