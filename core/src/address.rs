//! RFC 5321 paths and mailboxes: syntax, canonical form, routing detection.
//!
//! The relay decision is only as good as the address it looks at, so this
//! module keeps everything an attacker can hide a destination in: the quotes
//! of a local part, a source route, a `%`, `!` or `@` inside the local part.
//! Canonicalization makes one domain one string (case, trailing dot, IDNA), so
//! that `EXAMPLE.com.` and `example.com` cannot be judged differently.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest domain we accept (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// Longest local part we accept. RFC 5321 says 64 but asks servers to be
/// lenient; routed local parts of attacks are longer, so allow more.
pub const MAX_LOCAL: usize = 256;

/// A domain in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// ASCII (A-labels), lowercase, no trailing dot.
    Name(String),
    /// `[1.2.3.4]` or `[IPv6:...]`.
    Literal(IpAddr),
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Literal(IpAddr::V4(a)) => write!(f, "[{a}]"),
            Domain::Literal(IpAddr::V6(a)) => write!(f, "[IPv6:{a}]"),
        }
    }
}

/// Why an address is refused. Each maps to a 501 5.1.3 (recipient) or
/// 501 5.1.7 (sender) with this text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// No address at all: nothing after `FROM:`/`TO:`, `<>` where a mailbox
    /// is required (RCPT), or an empty string.
    Empty,
    /// A path that opens with `<` but has no `>` outside quotes, or (for
    /// [`parse_path`]) one not enclosed in `<>` at all.
    MissingBracket,
    /// Characters after the address. Not produced at present: what follows
    /// the path of MAIL or RCPT is read as ESMTP parameters.
    TrailingGarbage,
    /// A source route that is not `@domain[,@domain]:` before the mailbox:
    /// no colon, a hop without `@`, or a hop that is not a valid domain.
    BadRoute,
    /// Nothing before the `@`, or an empty quoted string `""`.
    EmptyLocalPart,
    /// A local part that is neither a dot-string (atoms of RFC 5321 atext
    /// separated by single dots) nor a valid quoted string, or a quoted
    /// string followed by something other than `@`.
    BadLocalPart,
    /// A local part longer than [`MAX_LOCAL`] octets.
    LocalPartTooLong,
    /// A quoted local part without its closing quote.
    UnterminatedQuote,
    /// A domain that is empty once its one trailing dot is dropped
    /// (`user@.`).
    EmptyDomain,
    /// A domain with a character no domain name holds, an empty label, a
    /// label over 63 octets or with a leading or trailing `-`, or a second
    /// unquoted `@` (`u@relay@target`).
    BadDomain,
    /// A domain longer than [`MAX_DOMAIN`] octets.
    DomainTooLong,
    /// The address ends in `@` (`user@`).
    TrailingAt,
    /// A `[...]` literal that is not a dotted-quad IPv4 address (no leading
    /// zeros, no octet over 255) or `IPv6:` and an IPv6 address.
    InvalidLiteral,
    /// The last label is all digits (`user@1.2.3.4`): an IP address without
    /// brackets is not taken for the literal, as Postfix's
    /// `resolve_numeric_domain = no`.
    NumericDomain,
    /// A non-ASCII domain (or an `xn--` label) that IDNA refuses, or whose
    /// A-label form is empty or longer than [`MAX_DOMAIN`].
    Idna,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressError::Empty => "empty address",
            AddressError::MissingBracket => "address not enclosed in <>",
            AddressError::TrailingGarbage => "characters after the address",
            AddressError::BadRoute => "malformed source route",
            AddressError::EmptyLocalPart => "empty local part",
            AddressError::BadLocalPart => "invalid character in local part",
            AddressError::LocalPartTooLong => "local part too long",
            AddressError::UnterminatedQuote => "unterminated quoted string",
            AddressError::EmptyDomain => "empty domain",
            AddressError::BadDomain => "invalid domain",
            AddressError::DomainTooLong => "domain too long",
            AddressError::TrailingAt => "address ends in @",
            AddressError::InvalidLiteral => "invalid address literal",
            AddressError::NumericDomain => "numeric domain: an address literal needs brackets",
            AddressError::Idna => "domain is not valid IDNA",
        })
    }
}

impl std::error::Error for AddressError {}

/// A mailbox: local part and (except for unqualified `postmaster`) a domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The local part as it travels on the wire: quotes and escapes kept,
    /// case kept (local parts are case-sensitive in principle).
    pub local: String,
    /// The local part with quotes and quoted-pairs removed. This is what
    /// routing detection looks at (Postfix's `resolve_dequoted_address`).
    pub dequoted: String,
    /// The local part was written as a quoted string (`"..."`).
    pub quoted: bool,
    /// `None` for an unqualified address (`<postmaster>`); the policy takes
    /// one as a recipient for postmaster only, and never as a sender.
    pub domain: Option<Domain>,
}

/// A reverse-path or forward-path: `<>` or a mailbox, with the source route
/// it was written with (kept only so that it can be shown; it is never used
/// for routing, RFC 5321 §3.6.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    /// The source route (`@a,@b:`), first hop first, canonical; empty
    /// without one.
    pub route: Vec<Domain>,
    /// `None` for the null path `<>`.
    pub mailbox: Option<Mailbox>,
}

impl Path {
    /// The null path `<>`: the reverse-path of bounces, to which no bounce
    /// is ever sent (RFC 5321 §4.5.5).
    pub const NULL: Path = Path {
        route: Vec::new(),
        mailbox: None,
    };

    /// Whether this is the null path `<>`.
    pub fn is_null(&self) -> bool {
        self.mailbox.is_none()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<")?;
        for (i, d) in self.route.iter().enumerate() {
            write!(f, "{}@{d}", if i == 0 { "" } else { "," })?;
        }
        if !self.route.is_empty() {
            f.write_str(":")?;
        }
        if let Some(m) = &self.mailbox {
            write!(f, "{m}")?;
        }
        f.write_str(">")
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.local)?;
        if let Some(d) = &self.domain {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// How a local part asks for the mail to be routed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingKind {
    /// `user%domain` — the "percent hack".
    Percent,
    /// `domain!user` — a UUCP bang path.
    Bang,
    /// `user@domain` inside the local part (quoted, or a double `@`).
    At,
}

/// Sender-specified routing found in a local part, and where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// Which form of routing it is.
    pub kind: RoutingKind,
    /// The local part of the address it routes to.
    pub local: String,
    /// The domain it routes to, as written (not yet canonical).
    pub domain: String,
}

impl Mailbox {
    /// Builds a canonical mailbox from the raw pieces the command parser
    /// found: `local` as written (quotes included), `domain` as written.
    pub fn from_parts(local: &str, domain: Option<&str>) -> Result<Mailbox, AddressError> {
        let (dequoted, quoted) = check_local(local)?;
        let domain = match domain {
            Some(d) => Some(canonical_domain(d)?),
            None => None,
        };
        Ok(Mailbox {
            local: local.to_string(),
            dequoted,
            quoted,
            domain,
        })
    }

    /// Parses `local@domain` (no brackets, no route).
    pub fn parse(s: &str) -> Result<Mailbox, AddressError> {
        let (local, domain) = split_mailbox(s)?;
        Mailbox::from_parts(local, domain)
    }

    /// The sender-specified routing hidden in the local part, if any.
    /// `%`, `!` and `@` all count, quoted or not: safe rather than correct.
    pub fn routing(&self) -> Option<Routing> {
        routing_of(&self.dequoted)
    }

    /// Whether the dequoted local part holds `%`, `!` or `@`: the cheap
    /// test, true exactly when [`Mailbox::routing`] is `Some`.
    pub fn is_routed(&self) -> bool {
        self.dequoted.bytes().any(|b| matches!(b, b'%' | b'!' | b'@'))
    }

    /// The local part folded for mailbox lookups: mailbox names are matched
    /// without regard to case, as Mailtraq and most servers do.
    pub fn local_key(&self) -> String {
        self.dequoted.to_ascii_lowercase()
    }

    /// `local@domain` in canonical form, the key for mailbox lookups.
    pub fn key(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}@{}", self.local_key(), d),
            None => self.local_key(),
        }
    }
}

/// Finds routing in a dequoted local part. `@` wins over `%` and `!`
/// because it is how the address would be read by the next hop; `%` is
/// taken at its rightmost and `!` at its leftmost, as Sendmail does.
pub fn routing_of(local: &str) -> Option<Routing> {
    if let Some(i) = local.rfind('@') {
        return Some(Routing {
            kind: RoutingKind::At,
            local: local[..i].to_string(),
            domain: local[i + 1..].to_string(),
        });
    }
    if let Some(i) = local.find('!') {
        return Some(Routing {
            kind: RoutingKind::Bang,
            local: local[i + 1..].to_string(),
            domain: local[..i].to_string(),
        });
    }
    if let Some(i) = local.rfind('%') {
        return Some(Routing {
            kind: RoutingKind::Percent,
            local: local[..i].to_string(),
            domain: local[i + 1..].to_string(),
        });
    }
    None
}

/// Splits `local@domain` at the `@` that is outside quotes. An unquoted `@`
/// in the local part (`u@F@H`) is refused here: it is a routing trick and
/// not RFC 5321 syntax.
pub fn split_mailbox(s: &str) -> Result<(&str, Option<&str>), AddressError> {
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    let b = s.as_bytes();
    let local_end = if b[0] == b'"' {
        let mut i = 1;
        loop {
            match b.get(i) {
                None => return Err(AddressError::UnterminatedQuote),
                Some(b'\\') => i += 2,
                Some(b'"') => break i + 1,
                Some(_) => i += 1,
            }
        }
    } else {
        memchr::memchr(b'@', b).unwrap_or(b.len())
    };
    if local_end > b.len() {
        return Err(AddressError::UnterminatedQuote);
    }
    match b.get(local_end) {
        None => Ok((s, None)),
        Some(b'@') => {
            let domain = &s[local_end + 1..];
            if domain.is_empty() {
                Err(AddressError::TrailingAt)
            } else if domain.contains('@') {
                Err(AddressError::BadDomain)
            } else {
                Ok((&s[..local_end], Some(domain)))
            }
        }
        Some(_) => Err(AddressError::BadLocalPart),
    }
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

/// Checks a local part's syntax and returns its dequoted value.
fn check_local(local: &str) -> Result<(String, bool), AddressError> {
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL {
        return Err(AddressError::LocalPartTooLong);
    }
    let b = local.as_bytes();
    if b[0] == b'"' {
        if b.len() < 2 || b[b.len() - 1] != b'"' {
            return Err(AddressError::UnterminatedQuote);
        }
        let mut out = String::with_capacity(b.len());
        let inner = &local[1..local.len() - 1];
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n) if (' '..='~').contains(&n) => out.push(n),
                    _ => return Err(AddressError::BadLocalPart),
                },
                '"' => return Err(AddressError::BadLocalPart),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    return Err(AddressError::BadLocalPart);
                }
                c => out.push(c),
            }
        }
        if out.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        return Ok((out, true));
    }
    if !is_dot_string(local) {
        return Err(AddressError::BadLocalPart);
    }
    Ok((local.to_string(), false))
}

/// Whether `local` may stand unquoted as a local part: atoms of atext
/// separated by single dots (RFC 5321's Dot-string).
pub fn is_dot_string(local: &str) -> bool {
    let mut prev_dot = true;
    for &c in local.as_bytes() {
        if c == b'.' {
            if prev_dot {
                return false;
            }
            prev_dot = true;
        } else if is_atext(c) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    !prev_dot
}

/// Canonical form of a domain or address literal: lowercase A-labels,
/// one trailing dot dropped, IP literals parsed.
pub fn canonical_domain(d: &str) -> Result<Domain, AddressError> {
    if d.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if d.starts_with('[') {
        return parse_literal(d).map(Domain::Literal);
    }
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if d.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    let name = if needs_idna(d)? {
        let ascii = idna::domain_to_ascii(d).map_err(|_| AddressError::Idna)?;
        // IDNA mapping may turn other code points into dots or map to empty
        // labels; re-check the result with the ASCII rules.
        if ascii.is_empty() || ascii.len() > MAX_DOMAIN {
            return Err(AddressError::Idna);
        }
        ascii
    } else {
        d.to_ascii_lowercase()
    };
    check_labels(&name)?;
    Ok(Domain::Name(name))
}

/// A name's ASCII octets must be letters, digits, hyphens, underscores or
/// dots (`BadDomain` otherwise); it goes through IDNA when it holds other
/// octets (a U-label) or an `xn--` label (an A-label, whose Punycode IDNA
/// checks). One pass over the octets.
fn needs_idna(d: &str) -> Result<bool, AddressError> {
    let b = d.as_bytes();
    let mut idna = false;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x80 {
            idna = true;
        } else if c == b'.' {
            continue;
        } else if !is_ldh(c) {
            return Err(AddressError::BadDomain);
        }
        if (i == 0 || b[i - 1] == b'.') && b[i..].get(..4).is_some_and(|l| l.eq_ignore_ascii_case(b"xn--")) {
            idna = true;
        }
    }
    Ok(idna)
}

/// The label rules of an ASCII name: 1 to 63 letters, digits, hyphens or
/// underscores, no hyphen at either end; and no all-digit top-level label.
fn check_labels(name: &str) -> Result<(), AddressError> {
    let b = name.as_bytes();
    for label in b.split(|&c| c == b'.') {
        let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
            return Err(AddressError::BadDomain);
        };
        if label.len() > 63 || first == b'-' || last == b'-' || !label.iter().all(|&c| is_ldh(c)) {
            return Err(AddressError::BadDomain);
        }
    }
    // Postfix `resolve_numeric_domain = no`: `user@1.2.3.4` is not the
    // literal `[1.2.3.4]`, and no top-level domain is all digits.
    if b.rsplit(|&c| c == b'.')
        .next()
        .is_some_and(|tld| tld.iter().all(u8::is_ascii_digit))
    {
        return Err(AddressError::NumericDomain);
    }
    Ok(())
}

/// A letter, digit, hyphen or underscore.
fn is_ldh(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn parse_literal(d: &str) -> Result<IpAddr, AddressError> {
    let inner = d
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(AddressError::InvalidLiteral)?;
    // Byte-wise: the inside may hold any UTF-8, and slicing a str at byte 5
    // would panic in the middle of a character.
    if inner.len() > 5 && inner.as_bytes()[..5].eq_ignore_ascii_case(b"IPv6:") {
        // An IPv4-mapped IPv6 literal names the IPv4 address: one address,
        // one canonical form (`[IPv6:::ffff:1.2.3.4]` is `[1.2.3.4]`).
        return inner[5..]
            .parse::<Ipv6Addr>()
            .map(|a| IpAddr::V6(a).to_canonical())
            .map_err(|_| AddressError::InvalidLiteral);
    }
    // std's parser refuses leading zeros and values over 255, which is what
    // RFC 5321's Snum asks for.
    inner
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| AddressError::InvalidLiteral)
}

/// Parses the inside of `<...>` (route, mailbox) into a canonical path.
pub fn parse_path_inner(s: &str) -> Result<Path, AddressError> {
    if s.is_empty() {
        return Ok(Path::NULL);
    }
    let (route_text, mailbox) = split_route(s)?;
    let mut route = Vec::new();
    if let Some(r) = route_text {
        for hop in r.split(',') {
            let d = hop.strip_prefix('@').ok_or(AddressError::BadRoute)?;
            route.push(canonical_domain(d).map_err(|_| AddressError::BadRoute)?);
        }
    }
    Ok(Path {
        route,
        mailbox: Some(Mailbox::parse(mailbox)?),
    })
}

/// Splits `@a,@b:user@d` into the route `@a,@b` and `user@d`.
pub fn split_route(s: &str) -> Result<(Option<&str>, &str), AddressError> {
    if !s.starts_with('@') {
        return Ok((None, s));
    }
    let colon = s.find(':').ok_or(AddressError::BadRoute)?;
    let (route, rest) = (&s[..colon], &s[colon + 1..]);
    if route.len() < 2 || rest.is_empty() {
        return Err(AddressError::BadRoute);
    }
    Ok((Some(route), rest))
}

/// Parses a path as written in a command, brackets included: `<>`,
/// `<user@domain>`, `<@route:user@domain>`.
pub fn parse_path(s: &str) -> Result<Path, AddressError> {
    let inner = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or(AddressError::MissingBracket)?;
    parse_path_inner(inner)
}

#[cfg(test)]
mod tests;
