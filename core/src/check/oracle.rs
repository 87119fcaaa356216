//! The one property as a checker: "an untrusted client never gets a message
//! accepted for a foreign destination", with the companions that one session
//! can show.
//!
//! The oracle watches the wire, not the session's internals: the bytes the
//! client sent, the bytes the server answered, and the messages the server
//! handed on. It pairs commands with replies itself and judges each accepted
//! recipient with its own reading of the configuration, written apart from
//! the [`Policy`](crate::Policy) on purpose: a checker that called the policy
//! would agree with the policy's bugs. Replay, the simulation, the fuzzers and the real
//! server all feed it the same way.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::config::Config;
use crate::reply::{ReplyReader, check_line};
use crate::session::Message;

mod view;

pub use view::{ConfigView, is_foreign, is_trusted};
use view::{norm_domain, strip_route};

/// What kind of rule was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A foreign recipient accepted from an untrusted client.
    OpenRelay,
    /// A handed-on message holds a bare CR, a bare LF or a NUL.
    BareLineEnding,
    /// A message was handed on that the client did not end with CRLF.CRLF.
    SmuggledMessage,
    /// A reply line is not `ddd[ -]text<CRLF>` within 512 octets.
    MalformedReply,
    /// A handed-on message goes to a recipient that was not accepted.
    UnacceptedRecipient,
    /// The server answered octets the client sent in plain text after
    /// STARTTLS: it ran them instead of discarding them (CVE-2011-0411).
    InjectedCommand,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViolationKind::OpenRelay => "open relay",
            ViolationKind::BareLineEnding => "bare CR/LF handed on",
            ViolationKind::SmuggledMessage => "smuggled message",
            ViolationKind::MalformedReply => "malformed reply",
            ViolationKind::UnacceptedRecipient => "unaccepted recipient",
            ViolationKind::InjectedCommand => "STARTTLS command injection",
        })
    }
}

/// One broken rule, with the command it happened at and why it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which rule.
    pub kind: ViolationKind,
    /// The client command (or reply line) it happened at.
    pub command: String,
    /// The recipient concerned, for an open relay or an unaccepted
    /// recipient.
    pub recipient: Option<String>,
    /// Why it counts, in a sentence for the report.
    pub why: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.why)?;
        if let Some(r) = &self.recipient {
            write!(f, " (recipient {r})")?;
        }
        write!(f, " at {:?}", self.command)
    }
}

/// What the session did, for the replay's `@expect` and the summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// RCPT commands answered 2xx.
    pub rcpt_accepted: usize,
    /// RCPT commands answered otherwise.
    pub rcpt_refused: usize,
    /// Accepted recipients that were foreign (allowed for trusted clients).
    pub relayed: usize,
    /// Foreign or routed recipients refused.
    pub relay_refused: usize,
    /// End-of-data answered 2xx.
    pub messages_accepted: usize,
    /// Of those, messages with at least one foreign recipient.
    pub foreign_messages_accepted: usize,
    /// End-of-data answered 4xx/5xx.
    pub messages_refused: usize,
    /// Octets the client sent after a STARTTLS answered `220` and before
    /// the handshake: the server must discard them unread.
    pub injected_octets: u64,
}

/// The oracle's judgement of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Every broken rule, in the order found; empty when the session kept
    /// the property.
    pub violations: Vec<Violation>,
    /// What the session did, counted from the wire.
    pub stats: Stats,
}

/// A client line waiting for its reply.
#[derive(Debug)]
enum Pending {
    Greeting,
    Command(String),
    /// A SASL response line, or an AUTH command, with the user it names.
    Auth {
        user: Option<String>,
    },
    EndOfData {
        index: usize,
    },
    /// A BDAT chunk, read whole: its octets (none kept for a chunk larger
    /// than the size limit, which the server refuses) and whether it was
    /// the last.
    Chunk {
        data: Vec<u8>,
        last: bool,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Commands,
    /// Waiting for the reply to the pending DATA or AUTH before reading on.
    Gated,
    /// Reading a message body, up to CRLF.CRLF.
    Body,
    /// The next client line is a SASL response for this mechanism step.
    Sasl,
    /// STARTTLS was answered `220`: client bytes until the handshake were
    /// sent in plain text after it, and must be answered by nothing.
    AwaitTls,
    /// Reading the octets of a BDAT chunk: they follow the command whatever
    /// the reply (RFC 3030 §2), so no gate.
    Chunk {
        left: u64,
        last: bool,
        keep: bool,
        data: Vec<u8>,
    },
}

/// The wire oracle for one session.
#[derive(Debug)]
pub struct Oracle {
    view: Arc<ConfigView>,
    peer: IpAddr,
    /// The connection's own peer (the proxy's address when the client was
    /// named by one): only this address may rename the client.
    socket: IpAddr,
    /// A PROXY header the oracle believes named the client: what the
    /// client sends after it, XCLIENT included, is the client's own.
    header_named: bool,
    user: Option<String>,
    sender: Option<String>,
    /// Recipients accepted in the current transaction.
    accepted: Vec<String>,
    client: Vec<u8>,
    replies: ReplyReader,
    server_line: Vec<u8>,
    pending: VecDeque<Pending>,
    mode: Mode,
    /// SASL state: mechanism and what was gathered.
    sasl: Option<(String, Vec<String>)>,
    /// Bodies the client ended with CRLF.CRLF, unstuffed, with the
    /// recipients accepted for them.
    bodies: Vec<(Vec<u8>, Vec<String>)>,
    /// The chunks of the BDAT transaction under way that the server took
    /// (a `250` each), joined.
    chunked: Vec<u8>,
    handed: Vec<Message>,
    violations: Vec<Violation>,
    stats: Stats,
    closed: bool,
    /// The TLS handshake after STARTTLS is done: the server owes a reply
    /// to nothing the client has not sent since.
    tls: bool,
}

impl Oracle {
    /// An oracle for a session of `config` with the client at `peer`,
    /// expecting the server's greeting first.
    pub fn new(config: &Config, peer: IpAddr) -> Oracle {
        Oracle::with_socket(config, peer, peer)
    }

    /// An oracle for a session whose connection came from `socket`, which
    /// named `peer` as the client (a PROXY protocol header). A name given
    /// by a socket peer the oracle does not see as a trusted proxy is not
    /// believed: the session is judged as from `socket`.
    pub fn with_socket(config: &Config, peer: IpAddr, socket: IpAddr) -> Oracle {
        Oracle::with_view_socket(Arc::new(ConfigView::new(config)), peer, socket)
    }

    /// As [`Oracle::new`], with the configuration already read
    /// ([`ConfigView::new`] runs IDNA over every local domain): callers
    /// that judge many sessions of one configuration, such as the fuzz
    /// targets, read it once.
    pub fn with_view(view: Arc<ConfigView>, peer: IpAddr) -> Oracle {
        Oracle::with_view_socket(view, peer, peer)
    }

    /// [`Oracle::with_socket`] with the configuration already read.
    pub fn with_view_socket(view: Arc<ConfigView>, peer: IpAddr, socket: IpAddr) -> Oracle {
        let header_named = socket != peer && view.may_proxy(socket);
        let peer = if socket == peer || header_named {
            peer
        } else {
            socket
        };
        let mut pending = VecDeque::new();
        pending.push_back(Pending::Greeting);
        Oracle {
            view,
            peer,
            socket,
            header_named,
            user: None,
            sender: None,
            accepted: Vec::new(),
            client: Vec::new(),
            replies: ReplyReader::new(),
            server_line: Vec::new(),
            pending,
            mode: Mode::Commands,
            sasl: None,
            bodies: Vec::new(),
            chunked: Vec::new(),
            handed: Vec::new(),
            violations: Vec::new(),
            stats: Stats::default(),
            closed: false,
            tls: false,
        }
    }

    /// The session was authenticated out of band (transcripts' `@auth`).
    pub fn authenticated(&mut self, user: &str) {
        self.user = Some(user.to_string());
    }

    /// Bytes the client sent, in order, in any split. After DATA or AUTH the
    /// oracle reads no further client bytes until the reply is in, as the
    /// server does, and after `221`, `421` or a refused greeting none at
    /// all.
    pub fn client_bytes(&mut self, bytes: &[u8]) {
        self.client.extend_from_slice(bytes);
        self.pump();
    }

    /// Bytes the server sent, in order, in any split. Each line is checked
    /// as it completes ([`ViolationKind::MalformedReply`]); each whole reply
    /// is paired with the oldest client line still unanswered.
    pub fn server_bytes(&mut self, bytes: &[u8]) {
        // Check every line as it completes, before the reader may refuse it;
        // a line is cut after its LF or at 4097 octets. Whole runs up to the
        // next cut are copied at once (this runs on every reply of every
        // fuzzed and simulated session).
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = rest.len().min(4097 - self.server_line.len());
            let take = memchr::memchr(b'\n', &rest[..room]).map_or(room, |i| i + 1);
            self.server_line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.server_line.last() == Some(&b'\n') || self.server_line.len() > 4096 {
                let line = std::mem::take(&mut self.server_line);
                if let Err(e) = check_line(&line) {
                    self.violate(
                        ViolationKind::MalformedReply,
                        &String::from_utf8_lossy(&line),
                        None,
                        e.to_string(),
                    );
                }
            }
        }
        self.replies.push(bytes);
        self.pump();
    }

    /// A message the server handed out for storage. A bare CR, bare LF or
    /// NUL is reported at once; [`Oracle::finish`] matches it against what
    /// the client sent.
    pub fn handed_on(&mut self, message: &Message) {
        if has_bare(&message.body) {
            self.violate(
                ViolationKind::BareLineEnding,
                "DATA",
                None,
                "a message with a bare CR, bare LF or NUL was handed on".into(),
            );
        }
        self.handed.push(message.clone());
    }

    /// The driver finished the TLS handshake after a STARTTLS answered
    /// `220`. The client bytes since that STARTTLS line were plain text
    /// and are dropped unread, as the server must drop them; what the
    /// session knew is forgotten (RFC 3207 §4.2), the user too. From here
    /// on any reply that answers no client line sent over TLS (a `421`
    /// aside) answers those dropped octets: [`ViolationKind::InjectedCommand`].
    pub fn tls_established(&mut self) {
        self.pump();
        if self.mode != Mode::AwaitTls {
            return;
        }
        self.stats.injected_octets += self.client.len() as u64;
        self.client.clear();
        self.mode = Mode::Commands;
        self.tls = true;
        self.sender = None;
        self.accepted.clear();
        self.user = None;
        self.sasl = None;
        self.pump();
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ends the watch and gives the verdict. Each handed-on message, in
    /// order, must be byte for byte a body the client ended with
    /// CRLF.CRLF and the server did not refuse
    /// ([`ViolationKind::SmuggledMessage`]), and go only to recipients
    /// accepted for that body ([`ViolationKind::UnacceptedRecipient`]).
    pub fn finish(mut self) -> Verdict {
        self.pump();
        // Every handed-on message must be one the client ended properly,
        // byte for byte, to recipients that were accepted.
        let mut bodies = std::mem::take(&mut self.bodies).into_iter();
        for m in std::mem::take(&mut self.handed) {
            match bodies.next() {
                Some((body, rcpts)) if body == m.body => {
                    for r in &m.recipients {
                        let text = r.path.to_string();
                        if !rcpts.iter().any(|a| same_address(a, &text)) {
                            self.violate(
                                ViolationKind::UnacceptedRecipient,
                                "DATA",
                                Some(text),
                                "handed on to a recipient the client never had accepted".into(),
                            );
                        }
                    }
                }
                _ => self.violate(
                    ViolationKind::SmuggledMessage,
                    "DATA",
                    None,
                    "a message was handed on that the client did not end with <CRLF>.<CRLF>".into(),
                ),
            }
        }
        Verdict {
            violations: self.violations,
            stats: self.stats,
        }
    }

    fn violate(&mut self, kind: ViolationKind, command: &str, recipient: Option<String>, why: String) {
        self.violations.push(Violation {
            kind,
            command: command.to_string(),
            recipient,
            why,
        });
    }

    /// Reads client lines and server replies as far as both allow.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            // Replies first: they may ungate the client stream.
            if !self.pending.is_empty() {
                match self.replies.next_reply() {
                    Ok(Some(reply)) => {
                        let p = self.pending.pop_front().expect("front exists");
                        self.judge(p, reply.code);
                        progressed = true;
                    }
                    Ok(None) => {}
                    Err(_) => {
                        // Already reported line by line; resynchronize.
                        self.replies = ReplyReader::new();
                    }
                }
            } else if self.mode == Mode::AwaitTls || self.tls {
                // Around STARTTLS the client has nothing unanswered: a reply
                // now answers the plain-text octets after STARTTLS.
                if let Ok(Some(reply)) = self.replies.next_reply() {
                    self.unsolicited(reply.code);
                    progressed = true;
                }
            }
            if !self.closed {
                progressed |= self.read_client();
            }
            if !progressed {
                break;
            }
        }
    }

    /// Takes what it can from the client stream. True if it took anything.
    fn read_client(&mut self) -> bool {
        match self.mode {
            Mode::Gated | Mode::AwaitTls => false,
            Mode::Body => {
                let Some((consumed, body)) = end_of_body(&self.client) else {
                    return false;
                };
                self.client.drain(..consumed);
                let index = self.bodies.len();
                self.bodies.push((body, std::mem::take(&mut self.accepted)));
                self.pending.push_back(Pending::EndOfData { index });
                self.mode = Mode::Commands;
                true
            }
            Mode::Chunk {
                ref mut left,
                last,
                keep,
                ref mut data,
            } => {
                let n = (*left).min(self.client.len() as u64) as usize;
                if n == 0 && *left > 0 {
                    return false;
                }
                if keep {
                    data.extend_from_slice(&self.client[..n]);
                }
                self.client.drain(..n);
                *left -= n as u64;
                if *left == 0 {
                    let data = std::mem::take(data);
                    self.pending.push_back(Pending::Chunk { data, last });
                    self.mode = Mode::Commands;
                }
                true
            }
            Mode::Commands | Mode::Sasl => {
                let Some(nl) = memchr::memchr(b'\n', &self.client) else {
                    return false;
                };
                let raw: Vec<u8> = self.client.drain(..=nl).collect();
                if self.mode == Mode::Commands {
                    if let Some((size, last)) = bdat_line(&raw) {
                        self.mode = Mode::Chunk {
                            left: size,
                            last,
                            keep: size <= self.view.max_message_size,
                            data: Vec::new(),
                        };
                        return true;
                    }
                }
                let line = String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(&raw))
                    .trim_end_matches('\r')
                    .to_string();
                if self.mode == Mode::Sasl {
                    self.sasl_line(line);
                } else {
                    self.command_line(line);
                }
                true
            }
        }
    }

    /// A reply with no client line waiting for it, after STARTTLS: only
    /// the `421` of a timeout or a shutdown may come unasked.
    fn unsolicited(&mut self, code: u16) {
        if code == 421 {
            self.closed = true;
            return;
        }
        let when = if self.tls {
            "after the TLS handshake"
        } else {
            "before the TLS handshake"
        };
        self.violate(
            ViolationKind::InjectedCommand,
            "STARTTLS",
            None,
            format!(
                "a {code} reply {when} answers octets the client sent in plain text after STARTTLS ({} octets), which must be discarded unread",
                self.stats.injected_octets + self.client.len() as u64
            ),
        );
    }

    fn command_line(&mut self, line: String) {
        let verb = line.split([' ', '\t']).next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            // The replies to what follows wait on the handshake.
            "STARTTLS" => {
                self.pending.push_back(Pending::Command(line));
                self.mode = Mode::Gated;
            }
            "DATA" => {
                self.pending.push_back(Pending::Command(line));
                self.mode = Mode::Gated;
            }
            "AUTH" => {
                let mut words = line.split_whitespace().skip(1);
                let mech = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = words.next().map(str::to_string);
                let user = match (mech.as_str(), &initial) {
                    ("PLAIN", Some(i)) => plain_user(i),
                    _ => None,
                };
                self.sasl = Some((mech, initial.into_iter().collect()));
                self.pending.push_back(Pending::Auth { user });
                self.mode = Mode::Gated;
            }
            _ => self.pending.push_back(Pending::Command(line)),
        }
    }

    fn sasl_line(&mut self, line: String) {
        let line = line.as_str();
        let user = match &mut self.sasl {
            Some((mech, parts)) => {
                parts.push(line.to_string());
                match mech.as_str() {
                    "PLAIN" => plain_user(line),
                    "LOGIN" => parts
                        .first()
                        .and_then(|u| BASE64.decode(u).ok())
                        .map(|u| String::from_utf8_lossy(&u).into_owned()),
                    _ => None,
                }
            }
            None => None,
        };
        self.pending.push_back(Pending::Auth { user });
        self.mode = Mode::Gated;
    }

    fn judge(&mut self, pending: Pending, code: u16) {
        let ok = (200..300).contains(&code);
        // After these the server reads nothing more from the client.
        if code == 221 || code == 421 || (matches!(pending, Pending::Greeting) && code >= 400) {
            self.closed = true;
        }
        match pending {
            Pending::Greeting => {}
            Pending::EndOfData { index } => {
                if ok {
                    self.stats.messages_accepted += 1;
                    let rcpts = self.bodies.get(index).map_or(&[][..], |b| &b.1[..]);
                    if rcpts.iter().any(|r| self.view.is_foreign(r)) {
                        self.stats.foreign_messages_accepted += 1;
                    }
                } else {
                    self.stats.messages_refused += 1;
                    // A refused body is not handed on; forget it.
                    self.bodies.truncate(index);
                }
                self.sender = None;
            }
            Pending::Chunk { data, last } => self.judge_chunk(data, last, ok),
            Pending::Auth { user } => {
                if code == 334 {
                    self.mode = Mode::Sasl;
                } else {
                    self.mode = Mode::Commands;
                    self.sasl = None;
                    if code == 235 {
                        self.user = user;
                    }
                }
            }
            Pending::Command(line) => {
                let upper = line.to_ascii_uppercase();
                if upper.starts_with("DATA") {
                    self.mode = if code == 354 { Mode::Body } else { Mode::Commands };
                } else if upper.starts_with("STARTTLS") {
                    self.mode = if code == 220 {
                        Mode::AwaitTls
                    } else {
                        Mode::Commands
                    };
                } else if upper.starts_with("MAIL") {
                    if ok {
                        self.sender = Some(path_text(&line[4..]).to_string());
                        self.accepted.clear();
                        self.chunked.clear();
                    }
                } else if upper.starts_with("RCPT") {
                    let rcpt = path_text(&line[4..]).to_string();
                    let foreign = self.view.is_foreign(&rcpt);
                    if ok {
                        self.stats.rcpt_accepted += 1;
                        if foreign {
                            self.stats.relayed += 1;
                            let sender = self.sender.clone().unwrap_or_default();
                            if !self.view.is_trusted(self.peer, self.user.as_deref(), &sender) {
                                let why = format!(
                                    "{} is foreign ({}) and the client {} is untrusted ({})",
                                    rcpt,
                                    self.view.why_foreign(&rcpt),
                                    self.peer,
                                    self.view.why_untrusted(self.peer, self.user.as_deref(), &sender),
                                );
                                self.violate(ViolationKind::OpenRelay, &line, Some(rcpt.clone()), why);
                            }
                        }
                        self.accepted.push(rcpt);
                    } else {
                        self.stats.rcpt_refused += 1;
                        if foreign {
                            self.stats.relay_refused += 1;
                        }
                    }
                } else if upper.starts_with("XCLIENT") && code == 220 {
                    self.xclient(&line);
                } else if ok
                    && (upper.starts_with("RSET") || upper.starts_with("HELO") || upper.starts_with("EHLO"))
                {
                    self.sender = None;
                    self.accepted.clear();
                    self.chunked.clear();
                }
            }
        }
    }
}

impl Oracle {
    /// A BDAT chunk's reply. A `250` adds the chunk to the transaction's
    /// body; for the last chunk it is the message's acceptance, and the
    /// body the server must hand on is the joined chunks, with a CRLF
    /// added when the last line has none (`docs/design.md "CHUNKING"`).
    /// Any refusal ends the transaction, as RFC 3030 §2 has it.
    fn judge_chunk(&mut self, data: Vec<u8>, last: bool, ok: bool) {
        if ok {
            self.chunked.extend_from_slice(&data);
        }
        if ok && !last {
            return;
        }
        let mut body = std::mem::take(&mut self.chunked);
        let rcpts = std::mem::take(&mut self.accepted);
        self.sender = None;
        if !last {
            return;
        }
        if !ok {
            self.stats.messages_refused += 1;
            return;
        }
        if !body.is_empty() && !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        self.stats.messages_accepted += 1;
        if rcpts.iter().any(|r| self.view.is_foreign(r)) {
            self.stats.foreign_messages_accepted += 1;
        }
        self.bodies.push((body, rcpts));
    }

    /// An XCLIENT the server took (`220`): the client becomes the `ADDR`
    /// it names only if the oracle's own reading of `proxy.trusted` lets
    /// the connection's socket peer say so, and no PROXY header named the
    /// client already (the client behind it may not rename itself). A
    /// server that believes anyone
    /// (`trust-any-proxy-header`) keeps, for the oracle, the address the
    /// connection really came from, and relaying for it is caught.
    fn xclient(&mut self, line: &str) {
        self.sender = None;
        self.accepted.clear();
        self.user = None;
        if self.header_named || !self.view.may_xclient(self.socket) {
            return;
        }
        for attr in line.split_whitespace().skip(1) {
            let Some((name, value)) = attr.split_once('=') else {
                continue;
            };
            if !name.eq_ignore_ascii_case("ADDR") {
                continue;
            }
            let v6 = value.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("IPV6:"));
            let ip = if v6 {
                value[5..].parse().ok()
            } else {
                value.parse().ok()
            };
            if let Some(ip) = ip {
                self.peer = ip;
            }
        }
    }
}

/// The user named by an AUTH PLAIN response (its authcid).
fn plain_user(b64: &str) -> Option<String> {
    let raw = BASE64.decode(b64).ok()?;
    let mut parts = raw.split(|&b| b == 0);
    let _authz = parts.next()?;
    let authc = parts.next()?;
    Some(String::from_utf8_lossy(authc).into_owned())
}

/// The text after `FROM:`/`TO:`, without brackets or parameters.
fn path_text(args: &str) -> &str {
    let rest = args.trim_start();
    let rest = rest.split_once(':').map_or(rest, |(_, r)| r).trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        // The closing bracket outside quotes.
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '>' if !quoted => return &inner[..i],
                _ => {}
            }
        }
        inner
    } else {
        rest.split_whitespace().next().unwrap_or("")
    }
}

/// Two spellings of a recipient are the same address for the oracle.
fn same_address(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        s.trim_start_matches('<')
            .trim_end_matches('>')
            .to_ascii_lowercase()
    };
    let (a, b) = (strip(a), strip(b));
    a == b || canonical_tail(&a) == canonical_tail(&b)
}

fn canonical_tail(s: &str) -> String {
    let s = strip_route(s);
    match s.rsplit_once('@') {
        Some((l, d)) => format!("{}@{}", l, norm_domain(d)),
        None => s.to_string(),
    }
}

/// Finds CRLF.CRLF, with the start of the body counting as after a CRLF.
/// Returns the octets consumed and the unstuffed body.
fn end_of_body(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    let end = if buf.starts_with(b".\r\n") {
        0
    } else {
        memchr::memmem::find(buf, b"\r\n.\r\n")? + 2
    };
    let mut body = Vec::with_capacity(end);
    for line in buf[..end].split_inclusive(|&b| b == b'\n') {
        let line = if line.starts_with(b".") { &line[1..] } else { line };
        body.extend_from_slice(line);
    }
    // A bare LF inside splits the text above into extra pieces, but the
    // bytes are the same; only unstuffing at true line starts differs, and
    // such a body is tainted anyway.
    Some((end + 3, body))
}

/// The size and `LAST` of a BDAT command line as sent (LF included), when
/// the server takes the octets after it as a chunk: a line of at most 512
/// octets, `BDAT`, a size of at most 20 digits, `LAST` or nothing, between
/// spaces or tabs. Any other line, the server reads the octets after it as
/// commands, and so does the oracle.
fn bdat_line(raw: &[u8]) -> Option<(u64, bool)> {
    if raw.len() > 512 {
        return None;
    }
    let text = raw.strip_suffix(b"\n")?;
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let (verb, args) = text.split_at_checked(4)?;
    if !verb.eq_ignore_ascii_case(b"BDAT") || !args.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    let mut words = args.split(|&b| b == b' ' || b == b'\t').filter(|w| !w.is_empty());
    let size = words.next()?;
    if size.len() > 20 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return None,
    };
    if words.next().is_some() {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse().unwrap_or(u64::MAX);
    Some((size, last))
}

/// The oracle's own bare-CR/LF check, written apart from the session's.
fn has_bare(body: &[u8]) -> bool {
    body.windows(2).enumerate().any(|(i, w)| {
        (w[0] == b'\r' && w[1] != b'\n') || (w[1] == b'\n' && w[0] != b'\r') || (i == 0 && w[0] == b'\n')
    }) || body.last() == Some(&b'\r')
        || body == b"\n"
        || body.contains(&0)
}

#[cfg(test)]
mod tests;
