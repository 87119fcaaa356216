//! The corpus format: one SMTP session per `.smtp` file, readable and
//! diffable. This module parses and writes it; replaying a transcript against
//! a `Session` is built on top of [`parse`] and [`matches()`].
//!
//! # Format
//!
//! ```text
//! # nmap smtp-open-relay test 6: percent hack at the IP literal
//! @peer 203.0.113.7
//! @config ../configs/default.toml
//! @expect closed
//! @source nmap smtp-open-relay.nse test 6
//! C: EHLO probe.example
//! S: 250
//! C: MAIL FROM:<antispam@[198.51.100.25]>
//! S: 250
//! C: RCPT TO:<relaytest%nmap.scanme.org@[198.51.100.25]>
//! S: 5
//! C: QUIT
//! S: 221
//! ```
//!
//! One line, one item; a line ends at LF, and a CR just before the LF is
//! dropped (a file saved with CRLF line ends reads the same). Any other CR in a
//! line is an error: write it as `\r` in a `C~` line.
//!
//! - `# text` — a comment. Comments before the first step are kept in
//!   [`Transcript::comments`] (without the `# `); the first one says what the
//!   transcript tries. Comments after the first step are dropped.
//! - `@name value` — a header, only before the first step, each at most once:
//!   - `@peer IP` — the client's address (IPv4 or IPv6);
//!   - `@proxy IP` — the session came through a proxy at IP, whose PROXY
//!     protocol header named `@peer` as the client. The replay believes it
//!     only if the configuration trusts IP (`proxy.trusted`, with a
//!     `proxy.header`); otherwise the session is IP's own. Without it the
//!     connection came from `@peer` directly;
//!   - `@config PATH` — the configuration, relative to the transcript's own
//!     directory (kept as written);
//!   - `@auth USER` — the session starts authenticated as USER, as if AUTH had
//!     succeeded (recorded sessions, where the credentials stay out of the
//!     corpus);
//!   - `@expect closed|accepted` — what the session is (see *Replay*);
//!   - `@source TEXT` — where the case comes from, free text;
//!   - `@truncated N` — the recording was cut after N octets (`serve
//!     --record` caps each session): the steps are only the session's
//!     beginning. The replay replays them and says so.
//!
//!   An unknown header, a duplicate, a missing value or a bad IP is an error.
//! - `C: text` — the client sends `text` followed by CRLF.
//! - `C~ text` — the client sends the bytes of `text`, unescaped, with nothing
//!   appended. Escapes: `\r`, `\n`, `\0`, `\t`, `\\` and `\xNN` (two hex
//!   digits); anything else after a backslash is an error.
//! - `T: handshake` — the TLS handshake, after the client's `STARTTLS` was
//!   answered `220`: the replay driver performs it (the core replay tells
//!   the session it is done; `replay --target` runs a real one). What the
//!   client sends after it goes over TLS.
//! - `S: text` — the next reply must start with `text` (see [`matches()`]): `5`,
//!   `550`, `250 2.1.5`, or a whole reply. A reply of several lines is written
//!   as consecutive `S:` lines, each but the last of the form `ddd-...`
//!   (a continuation line): they make one expected reply, the lines joined by
//!   CRLF, so a recorded multi-line reply reads back as it was sent. Any other
//!   line between them (a blank line, a comment) ends the reply. `S:` with no
//!   text accepts any reply.
//! - blank lines are ignored.
//!
//! After `C:`, `C~`, `S:` and `T:` a single space is skipped; everything after it,
//! trailing spaces included, is the text.
//!
//! # Replay
//!
//! The replay (elsewhere) drives a server session from the steps:
//!
//! - The session is opened from `@peer` and `@config` and sends its greeting
//!   before any input is fed (a transcript never talks early by accident).
//!   The greeting is consumed silently, unless the first step is a
//!   [`Step::Reply`], which is then checked against the greeting (a
//!   black-listed client's `554` greeting, a recorded banner).
//! - Consecutive [`Step::Send`]s are fed to the session as ONE input: that is
//!   how a transcript pipelines commands, or sends DATA content before the
//!   `354` could have been seen.
//! - Each [`Step::Reply`] takes the next reply the server sent, in order, and
//!   checks it with [`matches()`]. A reply step when the server has closed the
//!   connection, or has nothing more to say, fails. Replies left over at the
//!   end are not checked by the replies, but still by the oracle.
//! - A [`Step::Tls`] first feeds the client bytes before it, as one input,
//!   then performs the handshake; it fails (a mismatch at its line) when
//!   the session did not ask for one (no `220` to a `STARTTLS`). The core
//!   replay offers STARTTLS when the configuration has a `[tls]`
//!   certificate.
//! - A transcript may end without `QUIT` when the server closes first.
//! - `@expect closed`: an attack. No message of the session may be accepted
//!   (`250` after DATA) for a foreign destination, even from a trusted
//!   client, and the relay oracle must hold whatever the replies say (an
//!   untrusted client's foreign RCPT answered 2xx is a violation by itself).
//!   `@expect accepted`: legitimate mail; at least one message of the
//!   session must be accepted (no false reject).
//!
//! # Writing
//!
//! [`Transcript::to_text`] writes comments, then headers, then steps, and
//! [`parse`] reads it back into an equal [`Transcript`] (line numbers aside:
//! they are those of the written text). A `Send { raw: false }` is written
//! as `C:` only when its bytes are UTF-8 text ending in CRLF with no other
//! CR or LF; anything else is written as `C~` with escapes. A `Reply` whose
//! expected text holds CRLFs must have a continuation line before each of
//! them, as [`parse`] makes it; two replies in a row where the first ends
//! with a continuation line are written with a blank line between them.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// One session of the corpus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The leading `#` lines, without the `# `.
    pub comments: Vec<String>,
    /// `@peer`: the client's address; the replay uses 127.0.0.1 without
    /// one.
    pub peer: Option<IpAddr>,
    /// `@proxy`: the proxy the session came through, which named `peer`.
    pub proxy: Option<IpAddr>,
    /// As written: relative to the directory of the transcript file.
    pub config: Option<PathBuf>,
    /// `@auth`: the user the session starts authenticated as.
    pub auth: Option<String>,
    /// `@expect`: what the session must show.
    pub expect: Option<Expect>,
    /// `@source`: where the case comes from.
    pub source: Option<String>,
    /// `@truncated`: the recording stopped after this many octets of
    /// transcript text; the steps are the session's beginning only.
    pub truncated: Option<u64>,
    /// The `C:`, `C~` and `S:` lines, in order.
    pub steps: Vec<Step>,
}

/// What a transcript is: an attack that must find the relay closed, or
/// legitimate mail that must be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// An attack: no message for a foreign destination may be accepted.
    Closed,
    /// Legitimate mail: at least one message must be accepted.
    Accepted,
}

impl Expect {
    /// The word after `@expect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Closed => "closed",
            Expect::Accepted => "accepted",
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Expect {
    type Err = String;

    fn from_str(s: &str) -> Result<Expect, String> {
        match s {
            "closed" => Ok(Expect::Closed),
            "accepted" => Ok(Expect::Accepted),
            other => Err(format!("@expect must be `closed` or `accepted`, not `{other}`")),
        }
    }
}

/// One step of a session. `line` is the (first) line of the step in the
/// text it was parsed from, counting from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Bytes the client sends. `raw: false` for a `C:` line (the bytes then
    /// end with the CRLF that was appended), `raw: true` for `C~`.
    Send {
        /// `true` for `C~`, `false` for `C:`.
        raw: bool,
        /// The bytes to send, unescaped.
        bytes: Vec<u8>,
        /// The line it was parsed from; 0 for a recorded step.
        line: usize,
    },
    /// A prefix of the next reply; the lines of a multi-line reply are joined
    /// by CRLF.
    Reply {
        /// The prefix; empty accepts any reply.
        expected: String,
        /// The line of its first `S:`; 0 for a recorded step.
        line: usize,
    },
    /// `T: handshake`: the TLS handshake that a `220` to STARTTLS
    /// announced is done here.
    Tls {
        /// The line it was parsed from; 0 for a recorded step.
        line: usize,
    },
}

impl Step {
    /// The line of the step in its text; 0 for a recorded step.
    pub fn line(&self) -> usize {
        match self {
            Step::Send { line, .. } | Step::Reply { line, .. } | Step::Tls { line } => *line,
        }
    }
}

/// A syntax error in a transcript. Its `Display` is `line N: message`; the
/// caller adds the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line of the error, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The reply check: `got` is the whole reply, its lines joined by CRLF,
/// without the final CRLF; it matches when it starts with `expected`.
pub fn matches(expected: &str, got: &str) -> bool {
    got.starts_with(expected)
}

/// `ddd-`: a reply line that another line follows.
fn is_continuation(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b'-'
}

/// The text after a `C:`, `C~` or `S:` marker: one separating space is
/// skipped, the rest is kept as is.
fn after_marker(rest: &str) -> &str {
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// Parses a transcript. Errors name the line.
pub fn parse(text: &str) -> Result<Transcript, ParseError> {
    let mut t = Transcript::default();
    // True while the previous line was an `S:` continuation line, so that an
    // `S:` line now extends the last reply.
    let mut open_reply = false;

    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let err = |message: String| ParseError { line, message };
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        let continues = open_reply;
        open_reply = false;

        if l.contains('\r') {
            return Err(err(
                "carriage return inside a line (write \\r in a C~ line)".into()
            ));
        }
        if l.trim().is_empty() {
            continue;
        }
        if let Some(c) = l.strip_prefix('#') {
            if t.steps.is_empty() {
                t.comments.push(after_marker(c).to_string());
            }
            continue;
        }
        if let Some(h) = l.strip_prefix('@') {
            if !t.steps.is_empty() {
                let name = h.split_whitespace().next().unwrap_or("");
                return Err(err(format!("header @{name} after the first step")));
            }
            header(&mut t, h).map_err(err)?;
            continue;
        }
        if let Some(rest) = l.strip_prefix("C:") {
            let mut bytes = after_marker(rest).as_bytes().to_vec();
            bytes.extend_from_slice(b"\r\n");
            t.steps.push(Step::Send {
                raw: false,
                bytes,
                line,
            });
        } else if let Some(rest) = l.strip_prefix("C~") {
            let bytes = unescape(after_marker(rest)).map_err(err)?;
            t.steps.push(Step::Send {
                raw: true,
                bytes,
                line,
            });
        } else if let Some(rest) = l.strip_prefix("T:") {
            match after_marker(rest) {
                "handshake" => t.steps.push(Step::Tls { line }),
                other => {
                    return Err(err(format!(
                        "unknown T: step `{other}` (the only one is `T: handshake`)"
                    )));
                }
            }
        } else if let Some(rest) = l.strip_prefix("S:") {
            let s = after_marker(rest);
            match t.steps.last_mut() {
                Some(Step::Reply { expected, .. }) if continues => {
                    expected.push_str("\r\n");
                    expected.push_str(s);
                }
                _ => t.steps.push(Step::Reply {
                    expected: s.to_string(),
                    line,
                }),
            }
            open_reply = is_continuation(s);
        } else {
            let shown: String = l.chars().take(40).collect();
            return Err(err(format!(
                "unknown line `{shown}` (expected #, @header, C:, C~, S: or T:)"
            )));
        }
    }
    Ok(t)
}

fn header(t: &mut Transcript, h: &str) -> Result<(), String> {
    let (name, value) = match h.find(char::is_whitespace) {
        Some(i) => (&h[..i], h[i..].trim()),
        None => (h, ""),
    };
    let known = ["peer", "proxy", "config", "auth", "expect", "source", "truncated"];
    if !known.contains(&name) {
        return Err(format!(
            "unknown header @{name} (known: @peer, @proxy, @config, @auth, @expect, @source, @truncated)"
        ));
    }
    let present = match name {
        "peer" => t.peer.is_some(),
        "proxy" => t.proxy.is_some(),
        "config" => t.config.is_some(),
        "auth" => t.auth.is_some(),
        "expect" => t.expect.is_some(),
        "truncated" => t.truncated.is_some(),
        _ => t.source.is_some(),
    };
    if present {
        return Err(format!("duplicate header @{name}"));
    }
    if value.is_empty() {
        return Err(format!("header @{name} needs a value"));
    }
    match name {
        "peer" => {
            let ip = value
                .parse::<IpAddr>()
                .map_err(|_| format!("@peer: `{value}` is not an IP address"))?;
            t.peer = Some(ip);
        }
        "proxy" => {
            let ip = value
                .parse::<IpAddr>()
                .map_err(|_| format!("@proxy: `{value}` is not an IP address"))?;
            t.proxy = Some(ip);
        }
        "config" => t.config = Some(PathBuf::from(value)),
        "auth" => t.auth = Some(value.to_string()),
        "expect" => t.expect = Some(value.parse()?),
        "truncated" => {
            let n = value
                .parse::<u64>()
                .map_err(|_| format!("@truncated: `{value}` is not a number of octets"))?;
            t.truncated = Some(n);
        }
        _ => t.source = Some(value.to_string()),
    }
    Ok(())
}

/// Decodes the text of a `C~` line: `\r`, `\n`, `\0`, `\t`, `\\` and `\xNN`;
/// other characters stand for their UTF-8 bytes.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            None => return Err("backslash at the end of the line".into()),
            Some((_, 'r')) => out.push(b'\r'),
            Some((_, 'n')) => out.push(b'\n'),
            Some((_, '0')) => out.push(0),
            Some((_, 't')) => out.push(b'\t'),
            Some((_, '\\')) => out.push(b'\\'),
            Some((_, 'x')) => {
                let hi = chars.next().and_then(|(_, c)| c.to_digit(16));
                let lo = chars.next().and_then(|(_, c)| c.to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err("\\x needs two hex digits".into()),
                }
            }
            Some((_, other)) => {
                return Err(format!(
                    "unknown escape `\\{other}` (known: \\r \\n \\0 \\t \\\\ \\xNN)"
                ));
            }
        }
    }
    Ok(out)
}

/// Encodes bytes for a `C~` line: printable ASCII as is, `\r`, `\n`, `\0`,
/// `\t` and `\\` by name, every other byte (and a trailing space, which
/// editors eat) as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0 => s.push_str("\\0"),
            b'\t' => s.push_str("\\t"),
            b' ' if i + 1 == bytes.len() => s.push_str("\\x20"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// The text of a `C:` line for these bytes, if they are one: UTF-8, ending
/// in CRLF, no other CR or LF.
fn plain_line(bytes: &[u8]) -> Option<&str> {
    let body = bytes.strip_suffix(b"\r\n")?;
    if body.iter().any(|&b| b == b'\r' || b == b'\n') {
        return None;
    }
    std::str::from_utf8(body).ok()
}

fn push_line(out: &mut String, marker: &str, text: &str) {
    out.push_str(marker);
    if !text.is_empty() {
        out.push(' ');
        out.push_str(text);
    }
    out.push('\n');
}

impl Transcript {
    /// Writes the transcript in the corpus format; [`parse`] reads it back.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.comments {
            push_line(&mut out, "#", c);
        }
        if let Some(ip) = &self.peer {
            push_line(&mut out, "@peer", &ip.to_string());
        }
        if let Some(ip) = &self.proxy {
            push_line(&mut out, "@proxy", &ip.to_string());
        }
        if let Some(p) = &self.config {
            push_line(&mut out, "@config", &p.to_string_lossy());
        }
        if let Some(a) = &self.auth {
            push_line(&mut out, "@auth", a);
        }
        if let Some(e) = self.expect {
            push_line(&mut out, "@expect", e.as_str());
        }
        if let Some(s) = &self.source {
            push_line(&mut out, "@source", s);
        }
        if let Some(n) = self.truncated {
            push_line(&mut out, "@truncated", &n.to_string());
        }
        let mut open_reply = false;
        for step in &self.steps {
            match step {
                Step::Send { raw, bytes, .. } => {
                    match plain_line(bytes).filter(|_| !raw) {
                        Some(text) => push_line(&mut out, "C:", text),
                        None => push_line(&mut out, "C~", &escape(bytes)),
                    }
                    open_reply = false;
                }
                Step::Reply { expected, .. } => {
                    if open_reply {
                        out.push('\n');
                    }
                    let mut last = "";
                    for l in expected.split("\r\n") {
                        push_line(&mut out, "S:", l);
                        last = l;
                    }
                    open_reply = is_continuation(last);
                }
                Step::Tls { .. } => {
                    push_line(&mut out, "T:", "handshake");
                    open_reply = false;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
