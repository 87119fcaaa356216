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
//!   - `@config PATH` — the configuration, relative to the transcript's own
//!     directory (kept as written);
//!   - `@auth USER` — the session starts authenticated as USER, as if AUTH had
//!     succeeded (recorded sessions, where the credentials stay out of the
//!     corpus);
//!   - `@expect closed|accepted` — what the session is (see *Replay*);
//!   - `@source TEXT` — where the case comes from, free text.
//!
//!   An unknown header, a duplicate, a missing value or a bad IP is an error.
//! - `C: text` — the client sends `text` followed by CRLF.
//! - `C~ text` — the client sends the bytes of `text`, unescaped, with nothing
//!   appended. Escapes: `\r`, `\n`, `\0`, `\t`, `\\` and `\xNN` (two hex
//!   digits); anything else after a backslash is an error.
//! - `S: text` — the next reply must start with `text` (see [`matches()`]): `5`,
//!   `550`, `250 2.1.5`, or a whole reply. A reply of several lines is written
//!   as consecutive `S:` lines, each but the last of the form `ddd-...`
//!   (a continuation line): they make one expected reply, the lines joined by
//!   CRLF, so a recorded multi-line reply reads back as it was sent. Any other
//!   line between them (a blank line, a comment) ends the reply. `S:` with no
//!   text accepts any reply.
//! - blank lines are ignored.
//!
//! After `C:`, `C~` and `S:` a single space is skipped; everything after it,
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
//! - A transcript may end without `QUIT` when the server closes first.
//! - `@expect closed`: an attack. No message of the session may be accepted
//!   (`250` after DATA) for a foreign destination, even from a trusted
//!   client, and the relay oracle must hold whatever the replies say (an
//!   untrusted client's foreign RCPT answered 2xx is a violation by itself). `@expect accepted`: legitimate mail; at
//!   least one message of the session must be accepted (no false reject).
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
    pub peer: Option<IpAddr>,
    /// As written: relative to the directory of the transcript file.
    pub config: Option<PathBuf>,
    pub auth: Option<String>,
    pub expect: Option<Expect>,
    pub source: Option<String>,
    pub steps: Vec<Step>,
}

/// What a transcript is: an attack that must find the relay closed, or
/// legitimate mail that must be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    Closed,
    Accepted,
}

impl Expect {
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
    Send { raw: bool, bytes: Vec<u8>, line: usize },
    /// A prefix of the next reply; the lines of a multi-line reply are joined
    /// by CRLF.
    Reply { expected: String, line: usize },
}

impl Step {
    pub fn line(&self) -> usize {
        match self {
            Step::Send { line, .. } | Step::Reply { line, .. } => *line,
        }
    }
}

/// A syntax error in a transcript. Its `Display` is `line N: message`; the
/// caller adds the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
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
                "unknown line `{shown}` (expected #, @header, C:, C~ or S:)"
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
    let known = ["peer", "config", "auth", "expect", "source"];
    if !known.contains(&name) {
        return Err(format!(
            "unknown header @{name} (known: @peer, @config, @auth, @expect, @source)"
        ));
    }
    let present = match name {
        "peer" => t.peer.is_some(),
        "config" => t.config.is_some(),
        "auth" => t.auth.is_some(),
        "expect" => t.expect.is_some(),
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
        "config" => t.config = Some(PathBuf::from(value)),
        "auth" => t.auth = Some(value.to_string()),
        "expect" => t.expect = Some(value.parse()?),
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
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const DESIGN_EXAMPLE: &str = "\
# nmap smtp-open-relay test 6: percent hack at the IP literal
@peer 203.0.113.7
@config ../configs/default.toml
@expect closed
C: EHLO probe.example
S: 250
C: MAIL FROM:<antispam@[198.51.100.25]>
S: 250
C: RCPT TO:<relaytest%nmap.scanme.org@[198.51.100.25]>
S: 5
C: QUIT
S: 221
";

    fn send(text: &str, line: usize) -> Step {
        Step::Send {
            raw: false,
            bytes: format!("{text}\r\n").into_bytes(),
            line,
        }
    }

    fn reply(expected: &str, line: usize) -> Step {
        Step::Reply {
            expected: expected.to_string(),
            line,
        }
    }

    fn err_line(text: &str) -> usize {
        match parse(text) {
            Ok(t) => panic!("parsed, expected an error: {t:?}"),
            Err(e) => e.line,
        }
    }

    #[test]
    fn transcript_design_example() {
        let t = parse(DESIGN_EXAMPLE).unwrap();
        assert_eq!(
            t.comments,
            ["nmap smtp-open-relay test 6: percent hack at the IP literal"]
        );
        assert_eq!(t.peer, Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))));
        assert_eq!(t.config, Some(PathBuf::from("../configs/default.toml")));
        assert_eq!(t.expect, Some(Expect::Closed));
        assert_eq!(t.auth, None);
        assert_eq!(t.source, None);
        assert_eq!(
            t.steps,
            vec![
                send("EHLO probe.example", 5),
                reply("250", 6),
                send("MAIL FROM:<antispam@[198.51.100.25]>", 7),
                reply("250", 8),
                send("RCPT TO:<relaytest%nmap.scanme.org@[198.51.100.25]>", 9),
                reply("5", 10),
                send("QUIT", 11),
                reply("221", 12),
            ]
        );
        // The example is already in the written form.
        assert_eq!(t.to_text(), DESIGN_EXAMPLE);
    }

    #[test]
    fn transcript_all_headers() {
        let t = parse(
            "@peer 2001:db8::1\n@config  cfg/a b.toml \n@auth carol\n\
             @expect accepted\n@source RFC 5321 §3.6.1, and more\nC: NOOP\n",
        )
        .unwrap();
        assert_eq!(t.peer, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(t.config, Some(PathBuf::from("cfg/a b.toml")));
        assert_eq!(t.auth.as_deref(), Some("carol"));
        assert_eq!(t.expect, Some(Expect::Accepted));
        assert_eq!(t.source.as_deref(), Some("RFC 5321 §3.6.1, and more"));
        assert_eq!(t.steps, vec![send("NOOP", 6)]);
    }

    #[test]
    fn transcript_errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("@peer 1.2.3.4\n@color blue\n", 2, "unknown header @color"),
            ("# c\n\n@peer 300.1.2.3\n", 3, "not an IP address"),
            ("@peer\n", 1, "needs a value"),
            ("@source  \n", 1, "needs a value"),
            ("@expect open\n", 1, "closed"),
            (
                "@peer 1.2.3.4\n@auth a\n@peer 1.2.3.5\n",
                3,
                "duplicate header @peer",
            ),
            ("@source a\n@source a\n", 2, "duplicate header @source"),
            ("@expect closed\n@expect closed\n", 2, "duplicate"),
            ("C: EHLO x\nS: 250\n@peer 1.2.3.4\n", 3, "after the first step"),
            ("C: EHLO x\nX: what\n", 2, "unknown line"),
            ("C: EHLO x\n  C: indented\n", 2, "unknown line"),
            ("C:EHLO\nc: lower case\n", 2, "unknown line"),
            ("\n\n\nC~ a\\qb\n", 4, "unknown escape `\\q`"),
            ("C~ a\\\n", 1, "backslash at the end"),
            ("C~ \\x4\n", 1, "two hex digits"),
            ("C~ \\xzz\n", 1, "two hex digits"),
            ("C: a\rb\n", 1, "carriage return"),
            ("S: 250\r\r\n", 1, "carriage return"),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
        assert_eq!(err_line("C: a\n# late comment\nS: 2\nnope\n"), 4);
    }

    #[test]
    fn transcript_comments_blank_lines_and_crlf_files() {
        let t = parse("#first\n# second\n#\n\n@peer 1.2.3.4\n#  third\r\nC: X\r\n# dropped\n\n").unwrap();
        assert_eq!(t.comments, ["first", "second", "", " third"]);
        assert_eq!(t.steps, vec![send("X", 7)]);
        // An empty C: line sends a bare CRLF (a blank line in a body).
        let t = parse("C:\nC: \nC:  x \n").unwrap();
        assert_eq!(t.steps[0], send("", 1));
        assert_eq!(t.steps[1], send("", 2));
        assert_eq!(t.steps[2], send(" x ", 3));
    }

    #[test]
    fn transcript_escapes() {
        assert_eq!(
            unescape(r"a\r\n.\r\n\0\t\\\x00\xFF\x7f é").unwrap(),
            b"a\r\n.\r\n\0\t\\\0\xff\x7f \xc3\xa9"
        );
        assert_eq!(unescape("").unwrap(), b"");
        assert!(unescape(r"\a").unwrap_err().contains(r"\a"));
        assert_eq!(escape(b"\r\n.\r\n"), r"\r\n.\r\n");
        assert_eq!(
            escape(b"a\\b\0\t\x01\x7f\xc3\xa9 "),
            r"a\\b\0\t\x01\x7f\xc3\xa9\x20"
        );
        assert_eq!(escape(b" a b"), " a b");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);

        let t = parse("C~ hello\\n.\\n\nC~\nC~ x \n").unwrap();
        assert_eq!(
            t.steps,
            vec![
                Step::Send {
                    raw: true,
                    bytes: b"hello\n.\n".to_vec(),
                    line: 1
                },
                Step::Send {
                    raw: true,
                    bytes: vec![],
                    line: 2
                },
                Step::Send {
                    raw: true,
                    bytes: b"x ".to_vec(),
                    line: 3
                },
            ]
        );
    }

    #[test]
    fn transcript_multi_line_replies() {
        let text = "\
C: EHLO probe.example
S: 250-mail.example.com
S: 250-PIPELINING
S: 250 SMTPUTF8
S: 250-next
# a comment ends a reply
S: 250-again
S: 250 x

S: 250-a
C: NOOP
S: 250 2.0.0
S: 221-bye
";
        let t = parse(text).unwrap();
        assert_eq!(
            t.steps,
            vec![
                send("EHLO probe.example", 1),
                reply("250-mail.example.com\r\n250-PIPELINING\r\n250 SMTPUTF8", 2),
                reply("250-next", 5),
                reply("250-again\r\n250 x", 7),
                reply("250-a", 10),
                send("NOOP", 11),
                reply("250 2.0.0", 12),
                reply("221-bye", 13),
            ]
        );
        // Written back, the reply that ends with a continuation line and is
        // followed by another reply gets a blank line.
        let back = parse(&t.to_text()).unwrap();
        assert_eq!(back.steps.len(), t.steps.len());
        assert!(
            t.to_text()
                .contains("S: 250 SMTPUTF8\nS: 250-next\n\nS: 250-again\n")
        );
        assert_eq!(parse(&back.to_text()).unwrap(), back);
    }

    #[test]
    fn transcript_matches_is_a_prefix_check() {
        let ehlo = "250-mail.example.com\r\n250-PIPELINING\r\n250 SMTPUTF8";
        assert!(matches("250", ehlo));
        assert!(matches("250-mail.example.com\r\n250-PIPELINING", ehlo));
        assert!(matches(ehlo, ehlo));
        assert!(!matches("250 ", ehlo));
        assert!(matches("5", "550 5.7.1 relay denied"));
        assert!(matches("550 5.7.1", "550 5.7.1 relay denied"));
        assert!(!matches("550 5.7.1", "550 5.1.1 unknown"));
        assert!(!matches("250 2.0.0 queued", "250 2.0.0"));
        assert!(matches("", "421 4.7.0"));
    }

    #[test]
    fn transcript_to_text_picks_c_or_c_tilde() {
        let t = Transcript {
            steps: vec![
                send("MAIL FROM:<a@b>", 0),
                Step::Send {
                    raw: false,
                    bytes: b"no crlf".to_vec(),
                    line: 0,
                },
                Step::Send {
                    raw: false,
                    bytes: b"bare\nlf\r\n".to_vec(),
                    line: 0,
                },
                Step::Send {
                    raw: false,
                    bytes: b"\xff\r\n".to_vec(),
                    line: 0,
                },
                Step::Send {
                    raw: true,
                    bytes: b"QUIT\r\n".to_vec(),
                    line: 0,
                },
            ],
            ..Transcript::default()
        };
        assert_eq!(
            t.to_text(),
            "C: MAIL FROM:<a@b>\nC~ no crlf\nC~ bare\\nlf\\r\\n\nC~ \\xff\\r\\n\nC~ QUIT\\r\\n\n"
        );
    }

    fn without_lines(mut t: Transcript) -> Transcript {
        for s in &mut t.steps {
            match s {
                Step::Send { line, .. } | Step::Reply { line, .. } => *line = 0,
            }
        }
        t
    }

    /// A one-line value: no CR or LF, no surrounding white space, not empty.
    fn value() -> impl Strategy<Value = String> {
        "[^\r\n]{1,24}".prop_filter_map("needs a trimmed value", |s| {
            let v = s.trim();
            (!v.is_empty()).then(|| v.to_string())
        })
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| Step::Send {
                raw: true,
                bytes,
                line: 0
            }),
            "[^\r\n]{0,30}".prop_map(|t| send(&t, 0)),
            (
                proptest::collection::vec("[0-9]{3}-[^\r\n]{0,10}", 0..3),
                "[^\r\n]{0,20}"
            )
                .prop_map(|(mut lines, last)| {
                    lines.push(last);
                    reply(&lines.join("\r\n"), 0)
                }),
        ]
    }

    fn transcript() -> impl Strategy<Value = Transcript> {
        (
            proptest::collection::vec("[^\r\n]{0,20}", 0..3),
            proptest::option::of(any::<IpAddr>()),
            proptest::option::of(value()),
            proptest::option::of(value()),
            proptest::option::of(prop_oneof![Just(Expect::Closed), Just(Expect::Accepted)]),
            proptest::option::of(value()),
            proptest::collection::vec(step(), 0..12),
        )
            .prop_map(
                |(comments, peer, config, auth, expect, source, steps)| Transcript {
                    comments,
                    peer,
                    config: config.map(PathBuf::from),
                    auth,
                    expect,
                    source,
                    steps,
                },
            )
    }

    /// Every `*.smtp` file under `dir`, recursively.
    fn smtp_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                smtp_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "smtp") {
                out.push(path);
            }
        }
    }

    fn corpus_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus")
    }

    #[test]
    fn transcript_corpus_files_parse_with_headers() {
        let mut files = Vec::new();
        smtp_files(&corpus_dir(), &mut files);
        files.sort();
        let (mut attacks, mut legit) = (0, 0);
        let mut problems = Vec::new();
        for file in &files {
            let name = file.display();
            let text = std::fs::read_to_string(file).unwrap();
            let t = match parse(&text) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let mut problem = |p: &str| problems.push(format!("{name}: {p}"));
            if t.comments.first().is_none_or(|c| c.trim().is_empty()) {
                problem("no first # line saying what it tries");
            }
            if t.peer.is_none() {
                problem("no @peer");
            }
            match &t.config {
                None => problem("no @config"),
                Some(c) if !file.parent().unwrap().join(c).is_file() => {
                    problem(&format!("@config {} does not exist", c.display()))
                }
                Some(_) => {}
            }
            if t.source.is_none() {
                problem("no @source");
            }
            if !t.steps.iter().any(|s| matches!(s, Step::Send { .. })) {
                problem("sends nothing");
            }
            for s in &t.steps {
                let Step::Reply { expected, line } = s else {
                    continue;
                };
                if !matches!(expected.as_bytes().first(), Some(b'2'..=b'5')) {
                    problem(&format!("line {line}: expected reply does not start with 2-5"));
                }
            }
            let dir = file.parent().and_then(|d| d.file_name()).unwrap();
            match (dir.to_str().unwrap(), t.expect) {
                (_, None) => problem("no @expect"),
                ("attacks", Some(Expect::Closed)) => attacks += 1,
                ("legit", Some(Expect::Accepted)) => legit += 1,
                ("attacks" | "legit", Some(e)) => problem(&format!("@expect {e} in the wrong folder")),
                _ => {}
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(attacks >= 60, "only {attacks} attacks");
        assert!(legit >= 8, "only {legit} legitimate sessions");
    }

    #[test]
    fn transcript_corpus_configs_use_design_keys() {
        // The keys of docs/configuration.md; [routes] is free.
        let sections: &[(&str, &[&str])] = &[
            ("domains", &["local", "mailboxes", "relay_to"]),
            ("lan", &["networks"]),
            ("access", &["allow", "list"]),
            (
                "relay",
                &[
                    "require_auth",
                    "non_local_senders_in_lan",
                    "outside_lan",
                    "always_from",
                    "percent_hack",
                    "bang_path",
                    "acknowledge_open_relay",
                ],
            ),
            ("auth", &["users"]),
            (
                "lists",
                &[
                    "black",
                    "white",
                    "reject_local_sender_outside",
                    "reject_local_helo_outside",
                ],
            ),
            (
                "limits",
                &[
                    "max_recipients",
                    "max_message_size",
                    "max_errors",
                    "command_timeout_secs",
                    "data_timeout_secs",
                ],
            ),
        ];
        let dir = corpus_dir().join("configs");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            count += 1;
            let name = path.display();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with("# "), "{name}: no leading # line");
            let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            for (key, value) in &table {
                match key.as_str() {
                    "hostname" | "own_addresses" | "routes" => {}
                    section => {
                        let known = sections
                            .iter()
                            .find(|(s, _)| *s == section)
                            .unwrap_or_else(|| panic!("{name}: unknown key {section}"))
                            .1;
                        for k in value.as_table().unwrap().keys() {
                            assert!(known.contains(&k.as_str()), "{name}: unknown key {section}.{k}");
                        }
                    }
                }
            }
            if let Some(users) = table.get("auth").and_then(|a| a.get("users")) {
                for u in users.as_array().unwrap() {
                    for k in u.as_table().unwrap().keys() {
                        assert!(
                            ["name", "password", "relay"].contains(&k.as_str()),
                            "{name}: auth.users.{k}"
                        );
                    }
                }
            }
        }
        assert!(count >= 8, "{count} configs");
    }

    proptest! {
        #[test]
        fn transcript_write_parse_round_trips(t in transcript()) {
            let text = t.to_text();
            let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(without_lines(back.clone()), without_lines(t));
            // Writing what was parsed gives the same text, line numbers and all.
            prop_assert_eq!(back.to_text(), text.clone());
            prop_assert_eq!(parse(&back.to_text()).unwrap(), back);
        }

        #[test]
        fn transcript_escape_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape(&bytes);
            prop_assert!(!e.contains(['\r', '\n']));
            prop_assert!(!e.ends_with(' '));
            prop_assert_eq!(unescape(&e).unwrap(), bytes);
        }

        #[test]
        fn transcript_parse_never_panics(text in "(([#@CS][:~]?|C:|C~|S:)[^\n]{0,12}\n?){0,8}") {
            let _ = parse(&text);
        }
    }
}
