//! Input generators: configurations that cover the option space, peers,
//! and the relay-trick grammar of addresses and sessions.
//!
//! [`FuzzConfig`] reads a fixed number of bytes (only fixed-size fields), so
//! a session input is a fixed header followed by raw bytes, and all-zero
//! header bytes mean a configuration close to `corpus/configs/default.toml`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use relayguard_core::Policy;
use relayguard_core::check::buggify::Bugs;
use relayguard_core::{Config, User};

/// Client addresses: inside and outside each LAN shape, the server itself.
pub const PEERS: [&str; 10] = [
    "203.0.113.7",
    "192.168.1.7",
    "192.168.1.200",
    "10.1.2.3",
    "10.2.3.15",
    "10.2.3.21",
    "198.51.100.25",
    "fd00::5",
    "::ffff:192.168.1.7",
    "2001:db8::1",
];

/// LAN entries in every form the configuration knows.
const LANS: [&str; 6] = [
    "192.168.1.0/24",
    "192.168.1.7",
    "10.1.*.*",
    "10.2.3.10-20",
    "fd00::/8",
    "10.0.0.0/8",
];

/// Users: name, password, relay right.
pub const USERS: [(&str, &str, bool); 3] = [
    ("carol", "secret", true),
    ("dave", "pw", false),
    ("Carol", "x", false),
];

/// Compiled policies by configuration and bugs (`None`: refused).
type PolicyCache = HashMap<(FuzzConfig, Bugs), Option<Arc<Policy>>>;

/// A configuration drawn from the option space.
#[derive(Arbitrary, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FuzzConfig {
    /// LAN entries; entry 0 (`192.168.1.0/24`) is on unless its bit is set.
    pub lan: [bool; 6],
    pub require_auth: bool,
    pub local_senders_only: bool,
    pub relay_to: bool,
    pub percent_hack: bool,
    pub bang_path: bool,
    pub no_mailboxes: bool,
    pub idn_domain: bool,
    pub users: [bool; 3],
    pub black: bool,
    pub outside_lan: bool,
    pub always_from: bool,
    pub acknowledge_open_relay: bool,
    pub allow_local_sender_outside: bool,
    pub allow_local_helo_outside: bool,
    pub max_recipients: u8,
    pub max_message_size: u16,
    pub max_errors: u8,
}

impl FuzzConfig {
    pub fn lan_entries(&self) -> Vec<&'static str> {
        LANS.iter()
            .enumerate()
            .filter(|&(i, _)| if i == 0 { !self.lan[0] } else { self.lan[i] })
            .map(|(_, l)| *l)
            .collect()
    }

    pub fn local_domains(&self) -> Vec<&'static str> {
        let mut v = vec!["example.com"];
        if self.idn_domain {
            v.push("bücher.example");
        }
        v
    }

    fn users(&self) -> Vec<(&'static str, &'static str, bool)> {
        USERS
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.users[i])
            .map(|(_, u)| *u)
            .collect()
    }

    /// The user an `auth` choice names, if the configuration has it (or a
    /// name it does not have, for choice 4).
    pub fn user_name(&self, auth: u8) -> Option<&'static str> {
        match auth % 5 {
            0 => None,
            4 => Some("nobody"),
            i => Some(USERS[i as usize - 1].0),
        }
    }

    pub fn max_message_size(&self) -> usize {
        if self.max_message_size == 0 {
            65536
        } else {
            self.max_message_size as usize
        }
    }

    /// The configuration, as [`Config`]; equal to `Config::from_toml(&self.to_toml())`.
    pub fn config(&self) -> Config {
        let mut c = Config {
            hostname: "mail.example.com".into(),
            own_addresses: vec!["198.51.100.25".parse().unwrap()],
            ..Config::default()
        };
        c.domains.local = self.local_domains().iter().map(|s| s.to_string()).collect();
        if !self.no_mailboxes {
            c.domains.mailboxes = Some(
                ["alice@example.com", "bob@example.com", "postmaster@example.com"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
        }
        if self.relay_to {
            c.domains.relay_to = vec!["backup.example.org".into()];
        }
        c.lan.networks = self.lan_entries().iter().map(|s| s.to_string()).collect();
        c.relay.require_auth = self.require_auth;
        c.relay.non_local_senders_in_lan = !self.local_senders_only;
        c.relay.outside_lan = self.outside_lan;
        if self.always_from {
            c.relay.always_from = vec!["*@partner.example".into()];
        }
        c.relay.percent_hack = self.percent_hack;
        c.relay.bang_path = self.bang_path;
        c.relay.acknowledge_open_relay = self.acknowledge_open_relay;
        c.auth.users = self
            .users()
            .into_iter()
            .map(|(n, p, r)| User {
                name: n.into(),
                password: p.into(),
                relay: r,
            })
            .collect();
        if self.black {
            c.lists.black = vec!["203.0.113.0/24".into(), "*@spam.example".into()];
        }
        c.lists.reject_local_sender_outside = !self.allow_local_sender_outside;
        c.lists.reject_local_helo_outside = !self.allow_local_helo_outside;
        if self.max_recipients != 0 {
            c.limits.max_recipients = self.max_recipients as usize;
        }
        c.limits.max_message_size = self.max_message_size();
        if self.max_errors != 0 {
            c.limits.max_errors = self.max_errors as usize;
        }
        c
    }

    /// The configuration with `bugs`, compiled; `None` if the policy refuses
    /// it. Compiled policies are cached per thread (the fuzzers run one
    /// configuration many times), so this is cheap after the first call.
    pub fn build(&self, bugs: Bugs) -> Option<Arc<Policy>> {
        thread_local! {
            static CACHE: RefCell<PolicyCache> = RefCell::new(HashMap::new());
        }
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() > 4096 {
                cache.clear();
            }
            cache
                .entry((*self, bugs))
                .or_insert_with(|| Policy::with_bugs(self.config(), bugs).ok().map(Arc::new))
                .clone()
        })
    }

    /// The configuration as TOML, for regression transcripts.
    pub fn to_toml(&self) -> String {
        format!(
            "# Generated by relayguard-fuzz-targets from a fuzz input.\n{}",
            self.config().to_toml()
        )
    }
}

pub fn peer(i: u8) -> IpAddr {
    PEERS[i as usize % PEERS.len()].parse().unwrap()
}

/// The index of `ip` in [`PEERS`], if it is there.
pub fn peer_index(ip: IpAddr) -> Option<u8> {
    PEERS
        .iter()
        .position(|p| p.parse::<IpAddr>().ok() == Some(ip))
        .map(|i| i as u8)
}

// ---------------------------------------------------------------- raw sessions

/// The `session` target's input: a fixed header, then the client's bytes.
#[derive(Clone, Debug)]
pub struct SessionInput<'a> {
    pub config: FuzzConfig,
    pub peer: u8,
    pub auth: u8,
    pub split: u8,
    pub bytes: &'a [u8],
}

impl<'a> SessionInput<'a> {
    /// The length of the header.
    pub fn header_len() -> usize {
        let zeros = [0u8; 256];
        let mut u = Unstructured::new(&zeros);
        let _ = FuzzConfig::arbitrary(&mut u);
        256 - u.len() + 3
    }

    pub fn decode(data: &'a [u8]) -> Option<SessionInput<'a>> {
        let mut u = Unstructured::new(data);
        let config = FuzzConfig::arbitrary(&mut u).ok()?;
        let peer = u8::arbitrary(&mut u).ok()?;
        let auth = u8::arbitrary(&mut u).ok()?;
        let split = u8::arbitrary(&mut u).ok()?;
        Some(SessionInput {
            config,
            peer,
            auth,
            split,
            bytes: u.take_rest(),
        })
    }

    /// A header for the default configuration, this peer and user.
    pub fn header(peer: u8, auth: u8, split: u8) -> Vec<u8> {
        let mut h = vec![0u8; Self::header_len()];
        let n = h.len();
        h[n - 3] = peer;
        h[n - 2] = auth;
        h[n - 1] = split;
        h
    }

    pub fn peer(&self) -> IpAddr {
        peer(self.peer)
    }

    pub fn auth(&self) -> Option<&'static str> {
        self.config.user_name(self.auth)
    }

    /// The bytes cut into chunks: one chunk for split 0, else chunk sizes
    /// from a small congruential sequence seeded by `split`.
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        split_by(self.bytes, self.split)
    }
}

fn split_by(mut bytes: &[u8], split: u8) -> Vec<&[u8]> {
    if split == 0 {
        return vec![bytes];
    }
    let mut x = split;
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = (x as usize % 97 + 1).min(bytes.len());
        out.push(&bytes[..n]);
        bytes = &bytes[n..];
        x = x.wrapping_mul(37).wrapping_add(11);
    }
    out
}

// ---------------------------------------------------------------- the relay-trick grammar

/// How a domain is spelled: case, trailing dot, Unicode or punycode.
pub fn spell(base: &str, sel: u8, salt: u8) -> String {
    let mut s = base.to_string();
    if sel & 4 != 0 {
        s = match s.as_str() {
            "bücher.example" => "xn--bcher-kva.example".into(),
            "xn--bcher-kva.example" => "bücher.example".into(),
            "bücher.example.org" => "xn--bcher-kva.example.org".into(),
            _ => s,
        };
    }
    if sel & 1 != 0 {
        s = s
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if (salt as usize >> (i % 8)) & 1 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
    }
    if sel & 8 != 0 {
        s = s.to_uppercase();
    }
    if sel & 2 != 0 {
        s.push('.');
    }
    s
}

const FOREIGN: [&str; 9] = [
    "nmap.scanme.org",
    "spam.example",
    "example.com.evil.org",
    "evilexample.com",
    "sub.example.com",
    "bücher.example.org",
    "example.co",
    "partner.example",
    "mail.example.com.evil.org",
];

const LOCAL_PARTS: [&str; 8] = [
    "alice",
    "bob",
    "postmaster",
    "Alice",
    "relaytest",
    "x.y",
    "carol",
    "ALICE",
];

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum DomainKind {
    Local(u8),
    Hostname,
    Foreign(u8),
    RelayTo,
    OwnLiteral,
    OwnLiteralV6Mapped,
    ForeignLiteral,
    LoopbackLiteral,
    NumericOwn,
    Partner,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct DomainSpec {
    pub kind: DomainKind,
    pub spelling: u8,
    pub salt: u8,
}

impl DomainSpec {
    pub fn render(&self, config: &Config) -> String {
        let base: String = match self.kind {
            DomainKind::Local(i) => {
                let l = &config.domains.local;
                if l.is_empty() {
                    "example.com".into()
                } else {
                    l[i as usize % l.len()].clone()
                }
            }
            DomainKind::Hostname => config.hostname.clone(),
            DomainKind::Foreign(i) => FOREIGN[i as usize % FOREIGN.len()].into(),
            DomainKind::RelayTo => "backup.example.org".into(),
            DomainKind::OwnLiteral => return "[198.51.100.25]".into(),
            DomainKind::OwnLiteralV6Mapped => return "[IPv6:::ffff:198.51.100.25]".into(),
            DomainKind::ForeignLiteral => return "[203.0.113.9]".into(),
            DomainKind::LoopbackLiteral => return "[127.0.0.1]".into(),
            DomainKind::NumericOwn => return "198.51.100.25".into(),
            DomainKind::Partner => "partner.example".into(),
        };
        spell(&base, self.spelling, self.salt)
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum LocalSpec {
    User(u8),
    Percent(u8, DomainSpec),
    DoublePercent(u8, DomainSpec, DomainSpec),
    Bang(DomainSpec, u8),
    QuotedAt(u8, DomainSpec),
    DoubleAt(u8, DomainSpec),
    QuotedPercent(u8, DomainSpec),
    Quoted(u8),
    EscapedAt(u8, DomainSpec),
    PercentBang(u8, DomainSpec, DomainSpec),
}

fn lp(i: u8) -> &'static str {
    LOCAL_PARTS[i as usize % LOCAL_PARTS.len()]
}

impl LocalSpec {
    fn render(&self, c: &Config) -> String {
        match self {
            LocalSpec::User(u) => lp(*u).into(),
            LocalSpec::Percent(u, d) => format!("{}%{}", lp(*u), d.render(c)),
            LocalSpec::DoublePercent(u, d, e) => format!("{}%{}%{}", lp(*u), d.render(c), e.render(c)),
            LocalSpec::Bang(d, u) => format!("{}!{}", d.render(c), lp(*u)),
            LocalSpec::QuotedAt(u, d) => format!("\"{}@{}\"", lp(*u), d.render(c)),
            LocalSpec::DoubleAt(u, d) => format!("{}@{}", lp(*u), d.render(c)),
            LocalSpec::QuotedPercent(u, d) => format!("\"{}%{}\"", lp(*u), d.render(c)),
            LocalSpec::Quoted(u) => format!("\"{}\"", lp(*u)),
            LocalSpec::EscapedAt(u, d) => format!("\"{}\\@{}\"", lp(*u), d.render(c)),
            LocalSpec::PercentBang(u, d, e) => format!("{}!{}%{}", d.render(c), lp(*u), e.render(c)),
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Trailing {
    None,
    At,
    Dot,
    Space,
}

/// An address from the relay-trick grammar, without the brackets.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Addr {
    pub route: Option<DomainSpec>,
    pub local: LocalSpec,
    pub domain: Option<DomainSpec>,
    pub trailing: Trailing,
}

impl Addr {
    pub fn render(&self, c: &Config) -> String {
        let mut s = String::new();
        if let Some(r) = &self.route {
            s.push('@');
            s.push_str(&r.render(c));
            s.push(':');
        }
        s.push_str(&self.local.render(c));
        if let Some(d) = &self.domain {
            s.push('@');
            s.push_str(&d.render(c));
        }
        match self.trailing {
            Trailing::None => {}
            Trailing::At => s.push('@'),
            Trailing::Dot => s.push('.'),
            Trailing::Space => s.push(' '),
        }
        s
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum HeloName {
    Foreign,
    Local(DomainSpec),
    OwnLiteral,
    Partner,
}

/// Ways to end (or seem to end) DATA, and other bytes that must not pass.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Smuggle {
    LfDotLf,
    CrDotCr,
    LfDotCrLf,
    CrLfDotLf,
    CrDotCrLf,
    CrLfDotCr,
    BareLf,
    BareCr,
    Nul,
    CrLfDotCrLf,
}

impl Smuggle {
    fn bytes(self) -> &'static [u8] {
        match self {
            Smuggle::LfDotLf => b"\n.\n",
            Smuggle::CrDotCr => b"\r.\r",
            Smuggle::LfDotCrLf => b"\n.\r\n",
            Smuggle::CrLfDotLf => b"\r\n.\n",
            Smuggle::CrDotCrLf => b"\r.\r\n",
            Smuggle::CrLfDotCr => b"\r\n.\r",
            Smuggle::BareLf => b"\n",
            Smuggle::BareCr => b"\r",
            Smuggle::Nul => b"\0",
            Smuggle::CrLfDotCrLf => b"\r\n.\r\n",
        }
    }
}

const BODY_LINES: [&str; 8] = [
    "Subject: test",
    "hello",
    ".leading dot",
    "..",
    "",
    "From: <alice@example.com>",
    "RSET",
    "QUIT",
];

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum BodyPiece {
    /// A line of text, dot-stuffed or not, CRLF-terminated.
    Line(u8, bool),
    /// One of the smuggling sequences.
    Smuggle(Smuggle),
    /// A smuggling sequence followed by a whole second transaction.
    Inject(Smuggle, Addr, Addr),
}

/// A step of a scripted session.
#[derive(Arbitrary, Clone, Debug)]
pub enum ScriptStep {
    Ehlo(HeloName),
    Helo(HeloName),
    Mail(Addr, u8),
    MailNull,
    Rcpt(Addr),
    Data(Vec<BodyPiece>, bool),
    Rset,
    Noop,
    Quit,
    AuthPlain(u8, bool),
    Vrfy(Addr),
    Raw(Vec<u8>),
}

/// The `session_script` target's input.
#[derive(Arbitrary, Clone, Debug)]
pub struct Script {
    pub config: FuzzConfig,
    pub peer: u8,
    pub auth: u8,
    pub split: u8,
    pub steps: Vec<ScriptStep>,
}

impl Script {
    pub fn peer(&self) -> IpAddr {
        peer(self.peer)
    }

    pub fn auth(&self) -> Option<&'static str> {
        // Out-of-band authentication is rarer than none: it short-cuts trust.
        if self.auth >= 200 {
            self.config.user_name(self.auth)
        } else {
            None
        }
    }

    /// The client's bytes, as one chunk per step (the body of DATA is its
    /// own chunk, after the command's).
    pub fn render(&self, c: &Config) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for step in &self.steps {
            let line = |s: String| format!("{s}\r\n").into_bytes();
            match step {
                ScriptStep::Ehlo(h) => out.push(line(format!("EHLO {}", helo(h, c)))),
                ScriptStep::Helo(h) => out.push(line(format!("HELO {}", helo(h, c)))),
                ScriptStep::Mail(a, p) => {
                    let params = match p % 5 {
                        0 => "",
                        1 => " SIZE=100",
                        2 => " BODY=8BITMIME",
                        3 => " SMTPUTF8",
                        _ => " AUTH=<>",
                    };
                    out.push(line(format!("MAIL FROM:<{}>{params}", a.render(c))))
                }
                ScriptStep::MailNull => out.push(line("MAIL FROM:<>".into())),
                ScriptStep::Rcpt(a) => out.push(line(format!("RCPT TO:<{}>", a.render(c)))),
                ScriptStep::Data(pieces, end) => {
                    out.push(line("DATA".into()));
                    let mut body = Vec::new();
                    for p in pieces {
                        match p {
                            BodyPiece::Line(i, stuff) => {
                                let t = BODY_LINES[*i as usize % BODY_LINES.len()];
                                if *stuff && t.starts_with('.') {
                                    body.push(b'.');
                                }
                                body.extend_from_slice(t.as_bytes());
                                body.extend_from_slice(b"\r\n");
                            }
                            BodyPiece::Smuggle(s) => body.extend_from_slice(s.bytes()),
                            BodyPiece::Inject(s, from, to) => {
                                body.extend_from_slice(s.bytes());
                                body.extend_from_slice(
                                    format!(
                                        "MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\nSubject: smuggled\r\n",
                                        from.render(c),
                                        to.render(c)
                                    )
                                    .as_bytes(),
                                );
                            }
                        }
                    }
                    if *end {
                        if !body.ends_with(b"\r\n") {
                            body.extend_from_slice(b"\r\n");
                        }
                        body.extend_from_slice(b".\r\n");
                    }
                    if !body.is_empty() {
                        out.push(body);
                    }
                }
                ScriptStep::Rset => out.push(line("RSET".into())),
                ScriptStep::Noop => out.push(line("NOOP".into())),
                ScriptStep::Quit => out.push(line("QUIT".into())),
                ScriptStep::AuthPlain(u, good) => {
                    let (name, pw, _) = USERS[*u as usize % USERS.len()];
                    let pw = if *good { pw } else { "wrong" };
                    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{name}\0{pw}"));
                    out.push(line(format!("AUTH PLAIN {token}")));
                }
                ScriptStep::Vrfy(a) => out.push(line(format!("VRFY <{}>", a.render(c)))),
                ScriptStep::Raw(b) => {
                    if !b.is_empty() {
                        out.push(b.clone())
                    }
                }
            }
        }
        out
    }

    /// The rendered steps as the chunks fed to the session: each step its
    /// own chunk, or (split bit 0) commands pipelined together up to a
    /// DATA, or (bit 1) each chunk cut in two.
    pub fn chunks(&self, rendered: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut pipelined = false;
        for r in rendered {
            let is_command = !pipelined_barrier(chunks.last());
            if self.split & 1 != 0 && pipelined && is_command {
                chunks.last_mut().unwrap().extend_from_slice(r);
            } else {
                chunks.push(r.clone());
            }
            pipelined = true;
        }
        if self.split & 2 != 0 {
            let at = (self.split >> 2) as usize;
            chunks = chunks
                .into_iter()
                .flat_map(|c| {
                    if c.len() < 2 {
                        vec![c]
                    } else {
                        let k = 1 + at % (c.len() - 1);
                        vec![c[..k].to_vec(), c[k..].to_vec()]
                    }
                })
                .collect();
        }
        chunks
    }
}

/// True when the previous chunk ends with a DATA command: what follows is a
/// body and must wait for the 354.
fn pipelined_barrier(last: Option<&Vec<u8>>) -> bool {
    last.is_none_or(|l| l.len() >= 6 && l[l.len() - 6..].eq_ignore_ascii_case(b"DATA\r\n"))
}

fn helo(h: &HeloName, c: &Config) -> String {
    match h {
        HeloName::Foreign => "client.example.org".into(),
        HeloName::Local(d) => d.render(c),
        HeloName::OwnLiteral => "[198.51.100.25]".into(),
        HeloName::Partner => "partner.example".into(),
    }
}

/// The `policy` target's input.
#[derive(Arbitrary, Clone, Debug)]
pub struct PolicyInput {
    pub config: FuzzConfig,
    pub peer: PeerChoice,
    pub auth: u8,
    pub accepted: u8,
    pub sender: Addr,
    pub rcpt: Addr,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct PeerChoice(pub u8);

impl PeerChoice {
    pub fn ip(self) -> IpAddr {
        peer(self.0)
    }
}

/// The `client` target's job.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct ClientJob {
    pub auth: bool,
    pub rcpts: u8,
    pub body: [u8; 8],
}

impl ClientJob {
    pub fn job(&self) -> relayguard_core::client::Job {
        const PIECES: [&[u8]; 8] = [
            b"line",
            b"\r\n",
            b"\n",
            b"\r",
            b".",
            b"..\r\n",
            b"\r\n.\r\n",
            b"\n.\n",
        ];
        let body = self
            .body
            .iter()
            .flat_map(|&b| PIECES[b as usize % 8].iter().copied())
            .collect();
        relayguard_core::client::Job {
            helo: "client.example.org".into(),
            auth: self.auth.then(|| ("carol".into(), "secret".into())),
            mail_from: "alice@example.com".into(),
            rcpt_to: (0..(self.rcpts % 3 + 1))
                .map(|i| format!("r{i}@example.org"))
                .collect(),
            body,
            timeout: std::time::Duration::from_secs(30),
        }
    }
}
