//! The relay-trick grammar: domains and local parts spelled the ways that
//! have fooled relays (case, trailing dots, IDNA, percent hack, bang paths,
//! quoting, source routes), HELO names, smuggling sequences and body pieces.

use arbitrary::Arbitrary;
use relayguard_core::Config;

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
    pub(super) fn bytes(self) -> &'static [u8] {
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

pub(super) const BODY_LINES: [&str; 8] = [
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
