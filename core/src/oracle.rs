//! The one property as a checker: "an untrusted client never gets a message
//! accepted for a foreign destination", with the companions that one session
//! can show.
//!
//! The oracle watches the wire, not the session's internals: the bytes the
//! client sent, the bytes the server answered, and the messages the server
//! handed on. It pairs commands with replies itself and judges each accepted
//! recipient with its own reading of the configuration, written apart from
//! [`crate::policy`] on purpose: a checker that called the policy would agree
//! with the policy's bugs. Replay, the simulation, the fuzzers and the real
//! server all feed it the same way.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::config::Config;
use crate::reply::{ReplyReader, check_line};
use crate::session::Message;

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
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViolationKind::OpenRelay => "open relay",
            ViolationKind::BareLineEnding => "bare CR/LF handed on",
            ViolationKind::SmuggledMessage => "smuggled message",
            ViolationKind::MalformedReply => "malformed reply",
            ViolationKind::UnacceptedRecipient => "unaccepted recipient",
        })
    }
}

/// One broken rule, with the command it happened at and why it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The client command (or reply line) it happened at.
    pub command: String,
    pub recipient: Option<String>,
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
    pub rcpt_accepted: usize,
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub violations: Vec<Violation>,
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
}

/// The wire oracle for one session.
#[derive(Debug)]
pub struct Oracle {
    view: ConfigView,
    peer: IpAddr,
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
    handed: Vec<Message>,
    violations: Vec<Violation>,
    stats: Stats,
    closed: bool,
}

impl Oracle {
    pub fn new(config: &Config, peer: IpAddr) -> Oracle {
        let mut pending = VecDeque::new();
        pending.push_back(Pending::Greeting);
        Oracle {
            view: ConfigView::new(config),
            peer,
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
            handed: Vec::new(),
            violations: Vec::new(),
            stats: Stats::default(),
            closed: false,
        }
    }

    /// The session was authenticated out of band (transcripts' `@auth`).
    pub fn authenticated(&mut self, user: &str) {
        self.user = Some(user.to_string());
    }

    pub fn client_bytes(&mut self, bytes: &[u8]) {
        self.client.extend_from_slice(bytes);
        self.pump();
    }

    pub fn server_bytes(&mut self, bytes: &[u8]) {
        // Check every line as it completes, before the reader may refuse it.
        for &b in bytes {
            self.server_line.push(b);
            if b == b'\n' || self.server_line.len() > 4096 {
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

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

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
            Mode::Gated => false,
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
            Mode::Commands | Mode::Sasl => {
                let Some(nl) = memchr::memchr(b'\n', &self.client) else {
                    return false;
                };
                let raw: Vec<u8> = self.client.drain(..=nl).collect();
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

    fn command_line(&mut self, line: String) {
        let verb = line.split([' ', '\t']).next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
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
                } else if upper.starts_with("MAIL") {
                    if ok {
                        self.sender = Some(path_text(&line[4..]).to_string());
                        self.accepted.clear();
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
                } else if ok
                    && (upper.starts_with("RSET") || upper.starts_with("HELO") || upper.starts_with("EHLO"))
                {
                    self.sender = None;
                    self.accepted.clear();
                }
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

/// The oracle's own bare-CR/LF check, written apart from the session's.
fn has_bare(body: &[u8]) -> bool {
    body.windows(2).enumerate().any(|(i, w)| {
        (w[0] == b'\r' && w[1] != b'\n') || (w[1] == b'\n' && w[0] != b'\r') || (i == 0 && w[0] == b'\n')
    }) || body.last() == Some(&b'\r')
        || body == b"\n"
        || body.contains(&0)
}

fn strip_route(s: &str) -> &str {
    if s.starts_with('@') {
        s.split_once(':').map_or(s, |(_, r)| r)
    } else {
        s
    }
}

fn norm_domain(d: &str) -> String {
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.starts_with('[') {
        let inner = d.trim_start_matches('[').trim_end_matches(']');
        let inner = match inner.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("IPv6:") => &inner[5..],
            _ => inner,
        };
        return match inner.parse::<IpAddr>() {
            // An IPv4-mapped IPv6 literal names the IPv4 address, as in the core.
            Ok(ip) => format!("[{}]", ip.to_canonical()),
            Err(_) => d.to_ascii_lowercase(),
        };
    }
    idna::domain_to_ascii(d).unwrap_or_else(|_| d.to_ascii_lowercase())
}

/// The configuration as the oracle reads it (docs/design.md "Local, foreign and trusted"):
/// "local", "foreign" and "trusted", nothing more.
#[derive(Clone, Debug)]
pub struct ConfigView {
    local: Vec<String>,
    /// `[domains].local` alone: what makes a sender local.
    sender_local: Vec<String>,
    relay_to: Vec<String>,
    lan: Vec<NetRange>,
    require_auth: bool,
    non_local_senders_in_lan: bool,
    outside_lan: bool,
    always_from: Vec<String>,
    relay_users: Vec<String>,
}

impl ConfigView {
    pub fn new(c: &Config) -> ConfigView {
        let mut local: Vec<String> = c.domains.local.iter().map(|d| norm_domain(d)).collect();
        local.push(norm_domain(&c.hostname));
        local.extend(c.own_addresses.iter().map(|a| format!("[{a}]")));
        let ack = c.relay.acknowledge_open_relay;
        ConfigView {
            sender_local: c.domains.local.iter().map(|d| norm_domain(d)).collect(),
            local,
            relay_to: c.domains.relay_to.iter().map(|d| norm_domain(d)).collect(),
            lan: c.lan.networks.iter().filter_map(|n| NetRange::parse(n)).collect(),
            require_auth: c.relay.require_auth,
            non_local_senders_in_lan: c.relay.non_local_senders_in_lan,
            outside_lan: ack && c.relay.outside_lan,
            always_from: if ack {
                c.relay
                    .always_from
                    .iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect()
            } else {
                Vec::new()
            },
            relay_users: c
                .auth
                .users
                .iter()
                .filter(|u| u.relay)
                .map(|u| u.name.clone())
                .collect(),
        }
    }

    fn in_lan(&self, ip: IpAddr) -> bool {
        self.lan.iter().any(|n| n.contains(ip))
    }

    /// The local part (quotes removed) and the domain, if any. A quoted
    /// local part runs to its closing quote; otherwise the last `@` splits.
    fn split(addr: &str) -> (String, Option<String>) {
        let a = strip_route(addr.trim_start_matches('<').trim_end_matches('>'));
        if let Some(rest) = a.strip_prefix('"') {
            let mut local = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            local.push(n);
                        }
                    }
                    '"' => {
                        let after = &rest[i + 1..];
                        return (local, after.strip_prefix('@').map(norm_domain));
                    }
                    c => local.push(c),
                }
            }
            return (local, None);
        }
        match a.rsplit_once('@') {
            Some((l, d)) => (l.to_string(), Some(norm_domain(d))),
            None => (a.to_string(), None),
        }
    }

    fn domain_of(addr: &str) -> Option<String> {
        Self::split(addr).1
    }

    /// Sender-specified routing: `%`, `!` or `@` in the local part, quoted
    /// or not (an unquoted double `@` puts one there too).
    fn is_routed(addr: &str) -> bool {
        Self::split(addr).0.contains(['%', '!', '@'])
    }

    fn is_local_domain(&self, d: &str) -> bool {
        self.local.iter().any(|l| l == d)
    }

    pub fn is_foreign(&self, rcpt: &str) -> bool {
        if Self::is_routed(rcpt) {
            return true;
        }
        match Self::domain_of(rcpt) {
            None => !Self::split(rcpt).0.eq_ignore_ascii_case("postmaster"),
            Some(d) => !self.is_local_domain(&d) && !self.relay_to.contains(&d),
        }
    }

    fn why_foreign(&self, rcpt: &str) -> &'static str {
        if Self::is_routed(rcpt) {
            "sender-specified routing"
        } else if Self::domain_of(rcpt).is_none() {
            "unqualified"
        } else {
            "domain neither local nor relay_to"
        }
    }

    pub fn is_trusted(&self, client: IpAddr, user: Option<&str>, sender: &str) -> bool {
        if user.is_some_and(|u| self.relay_users.iter().any(|r| r == u)) {
            return true;
        }
        if self.outside_lan {
            return true;
        }
        // The sender as the always_from patterns see it: canonical domain
        // (case, trailing dot, IDNA), local part folded.
        let sender_l = match Self::split(sender) {
            (local, Some(d)) => format!("{}@{d}", local.to_ascii_lowercase()),
            (local, None) => local.to_ascii_lowercase(),
        };
        if !sender_l.is_empty() && self.always_from.iter().any(|p| wildcard(p, &sender_l)) {
            return true;
        }
        if self.in_lan(client) && !self.require_auth {
            let sender_local = Self::domain_of(sender).is_some_and(|d| self.sender_local.contains(&d));
            return self.non_local_senders_in_lan || sender_local;
        }
        false
    }

    fn why_untrusted(&self, client: IpAddr, user: Option<&str>, sender: &str) -> String {
        let mut why = Vec::new();
        if !self.in_lan(client) {
            why.push("not in the LAN".to_string());
        } else if self.require_auth {
            why.push("the LAN must authenticate".to_string());
        } else {
            why.push("sender not local and non_local_senders_in_lan is off".to_string());
        }
        match user {
            Some(u) => why.push(format!("user {u} has no relay right")),
            None => why.push("not authenticated".to_string()),
        }
        let _ = sender;
        why.join(", ")
    }
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A network entry in any of the configuration's forms, read by the oracle
/// itself: CIDR, single address, wildcard octets, last-octet range.
#[derive(Clone, Copy, Debug)]
struct NetRange {
    lo: u128,
    hi: u128,
    v6: bool,
}

impl NetRange {
    fn key(ip: IpAddr) -> (u128, bool) {
        match ip {
            IpAddr::V4(a) => (u32::from(a) as u128, false),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => (u32::from(v4) as u128, false),
                None => (u128::from(a), true),
            },
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (k, v6) = Self::key(ip);
        v6 == self.v6 && self.lo <= k && k <= self.hi
    }

    fn parse(s: &str) -> Option<NetRange> {
        let s = s.trim();
        if let Some((addr, len)) = s.split_once('/') {
            let ip: IpAddr = addr.parse().ok()?;
            let len: u32 = len.parse().ok()?;
            let (k, v6) = Self::key(ip);
            let bits = if v6 { 128 } else { 32 };
            if len > bits {
                return None;
            }
            let host = match bits - len {
                128 => u128::MAX,
                n => (1u128 << n) - 1,
            };
            let lo = k & !host;
            return Some(NetRange {
                lo,
                hi: lo | host,
                v6,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            let (k, v6) = Self::key(ip);
            return Some(NetRange { lo: k, hi: k, v6 });
        }
        // IPv4 with `*` octets or an `a-b` range in one octet.
        let octets: Vec<&str> = s.split('.').collect();
        if octets.len() != 4 {
            return None;
        }
        let (mut lo, mut hi) = (0u32, 0u32);
        for o in octets {
            let (a, b) = match o {
                "*" => (0, 255),
                _ => match o.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let v: u32 = o.parse().ok()?;
                        (v, v)
                    }
                },
            };
            if a > b || b > 255 {
                return None;
            }
            lo = (lo << 8) | a;
            hi = (hi << 8) | b;
        }
        Some(NetRange {
            lo: lo as u128,
            hi: hi as u128,
            v6: false,
        })
    }
}

/// Whether a client is trusted to relay, by docs/design.md "Trusted clients".
pub fn is_trusted(config: &Config, client: IpAddr, user: Option<&str>, sender: &str) -> bool {
    ConfigView::new(config).is_trusted(client, user, sender)
}

/// Whether a recipient (as written, brackets optional) is a foreign
/// destination, by docs/design.md "Foreign destinations".
pub fn is_foreign(config: &Config, rcpt: &str) -> bool {
    ConfigView::new(config).is_foreign(rcpt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml(
            r#"
hostname = "mail.example.com"
own_addresses = ["198.51.100.25"]
[domains]
local = ["example.com"]
relay_to = ["backup.example.org"]
[lan]
networks = ["192.168.1.0/24", "10.1.*.*", "10.2.3.10-20"]
[auth]
users = [{ name = "carol", password = "x", relay = true }, { name = "dave", password = "y" }]
"#,
        )
        .unwrap()
    }

    #[test]
    fn foreign_by_the_design() {
        let v = ConfigView::new(&config());
        for local in [
            "alice@example.com",
            "alice@EXAMPLE.com.",
            "u@[198.51.100.25]",
            "u@mail.example.com",
            "postmaster",
            "u@backup.example.org",
            "@[198.51.100.25]:u@example.com",
            "\"alice\"@example.com",
            "<Postmaster>",
        ] {
            assert!(!v.is_foreign(local), "{local}");
        }
        for foreign in [
            "u@nmap.scanme.org",
            "u%nmap.scanme.org@example.com",
            "\"u@nmap.scanme.org\"@example.com",
            "nmap.scanme.org!u@example.com",
            "u%nmap.scanme.org@backup.example.org",
            "\"u@nmap.scanme.org\"",
            "\"u%nmap.scanme.org\"",
            "u@nmap.scanme.org@example.com",
            "@example.com:u@nmap.scanme.org",
            "bob",
            "u@[198.51.100.26]",
        ] {
            assert!(v.is_foreign(foreign), "{foreign}");
        }
    }

    #[test]
    fn trust_by_the_design() {
        let v = ConfigView::new(&config());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(v.is_trusted(ip("192.168.1.9"), None, "x@y.example"));
        assert!(v.is_trusted(ip("10.1.200.3"), None, "x@y.example"));
        assert!(v.is_trusted(ip("10.2.3.15"), None, ""));
        assert!(!v.is_trusted(ip("10.2.3.21"), None, ""));
        assert!(!v.is_trusted(ip("203.0.113.7"), None, "alice@example.com"));
        assert!(v.is_trusted(ip("203.0.113.7"), Some("carol"), ""));
        assert!(!v.is_trusted(ip("203.0.113.7"), Some("dave"), ""));
    }

    fn watch(peer: &str, client: &[&[u8]], server: &[&[u8]]) -> Verdict {
        let mut o = Oracle::new(&config(), peer.parse().unwrap());
        for s in server.iter().take(1) {
            o.server_bytes(s);
        }
        for (c, s) in client.iter().zip(server.iter().skip(1)) {
            o.client_bytes(c);
            o.server_bytes(s);
        }
        o.finish()
    }

    #[test]
    fn catches_an_accepted_foreign_rcpt_from_outside() {
        let v = watch(
            "203.0.113.7",
            &[
                b"EHLO x\r\n",
                b"MAIL FROM:<a@b.example>\r\n",
                b"RCPT TO:<u%nmap.scanme.org@example.com>\r\n",
            ],
            &[
                b"220 hi\r\n",
                b"250 ok\r\n",
                b"250 2.1.0 ok\r\n",
                b"250 2.1.5 ok\r\n",
            ],
        );
        assert_eq!(v.violations.len(), 1, "{v:?}");
        assert_eq!(v.violations[0].kind, ViolationKind::OpenRelay);
        assert!(
            v.violations[0].why.contains("sender-specified routing"),
            "{}",
            v.violations[0]
        );
        assert!(
            v.violations[0].why.contains("not in the LAN"),
            "{}",
            v.violations[0]
        );
    }

    #[test]
    fn refusals_and_lan_relaying_are_fine() {
        let v = watch(
            "203.0.113.7",
            &[
                b"EHLO x\r\n",
                b"MAIL FROM:<a@b.example>\r\n",
                b"RCPT TO:<u@nmap.scanme.org>\r\n",
            ],
            &[
                b"220 hi\r\n",
                b"250 ok\r\n",
                b"250 2.1.0 ok\r\n",
                b"550 5.7.1 no\r\n",
            ],
        );
        assert!(v.violations.is_empty(), "{v:?}");
        assert_eq!(v.stats.relay_refused, 1);
        let v = watch(
            "192.168.1.5",
            &[
                b"EHLO x\r\n",
                b"MAIL FROM:<a@b.example>\r\n",
                b"RCPT TO:<u@nmap.scanme.org>\r\n",
            ],
            &[
                b"220 hi\r\n",
                b"250 ok\r\n",
                b"250 2.1.0 ok\r\n",
                b"250 2.1.5 ok\r\n",
            ],
        );
        assert!(v.violations.is_empty(), "{v:?}");
        assert_eq!(v.stats.relayed, 1);
    }

    #[test]
    fn auth_plain_success_makes_the_user_trusted_and_failure_does_not() {
        let ok = format!("AUTH PLAIN {}\r\n", BASE64.encode(b"\0carol\0x"));
        let steps: [&[u8]; 4] = [
            b"EHLO x\r\n",
            ok.as_bytes(),
            b"MAIL FROM:<>\r\n",
            b"RCPT TO:<u@f.example>\r\n",
        ];
        let v = watch(
            "203.0.113.7",
            &steps,
            &[
                b"220 hi\r\n",
                b"250 ok\r\n",
                b"235 ok\r\n",
                b"250 ok\r\n",
                b"250 ok\r\n",
            ],
        );
        assert!(v.violations.is_empty(), "{v:?}");
        let v = watch(
            "203.0.113.7",
            &steps,
            &[
                b"220 hi\r\n",
                b"250 ok\r\n",
                b"535 no\r\n",
                b"250 ok\r\n",
                b"250 ok\r\n",
            ],
        );
        assert_eq!(v.violations.len(), 1, "{v:?}");
    }

    #[test]
    fn malformed_reply_lines_are_caught() {
        let v = watch("192.168.1.5", &[b"NOOP\r\n"], &[b"220 hi\r\n", b"250 ok\n"]);
        assert!(
            v.violations
                .iter()
                .any(|x| x.kind == ViolationKind::MalformedReply),
            "{v:?}"
        );
    }

    #[test]
    fn wildcards_and_ranges() {
        assert!(wildcard("*@spam.example", "x@spam.example"));
        assert!(!wildcard("*@spam.example", "x@spam.example.org"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(
            NetRange::parse("10.2.3.10-20")
                .unwrap()
                .contains("10.2.3.20".parse().unwrap())
        );
        assert!(
            NetRange::parse("::/0")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert!(NetRange::parse("10.1.*.*").is_some());
        assert!(NetRange::parse("10.1.*").is_none());
    }
}
