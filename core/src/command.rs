//! The SMTP command line parser.
//!
//! It borrows from the input line and allocates nothing: the session parses
//! every line a client sends, attackers included, so this is the hot path.
//! Paths are checked for syntax here and kept as written (quotes, route,
//! domain spelling); canonicalization happens in [`crate::address`] only for
//! the commands that reach the policy.

use std::fmt;

use crate::address::{self, AddressError};

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4). A longer line
/// is refused whole: a server that cut it at 512 would run its tail as a
/// second command.
pub const MAX_LINE: usize = 512;

/// Byte classes, so that each check is one table lookup per byte.
const CTRL: u8 = 1; // never in a command line: controls but TAB, DEL
const HIGH: u8 = 2; // outside ASCII: needs UTF-8 validation
const NOT_LOCAL: u8 = 4; // cannot appear unquoted in a local part
const NOT_DOMAIN: u8 = 8; // cannot appear in a domain name
const ENDS_LOCAL: u8 = 16; // `@` or `>`: where an unquoted local part stops

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            c |= CTRL | NOT_LOCAL | NOT_DOMAIN;
        }
        if b >= 0x80 {
            c |= HIGH;
        }
        if matches!(
            b,
            b' ' | b'\t' | b'<' | b'>' | b'(' | b')' | b',' | b';' | b':' | b'\\' | b'"' | b'[' | b']'
        ) {
            c |= NOT_LOCAL;
        }
        if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' || b >= 0x80) {
            c |= NOT_DOMAIN;
        }
        if b == b'@' || b == b'>' {
            c |= ENDS_LOCAL;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The union of the classes of `bytes`: branch-free, eight at a time.
fn classes(bytes: &[u8]) -> u8 {
    let mut acc = 0u8;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        acc |= CLASS[c[0] as usize]
            | CLASS[c[1] as usize]
            | CLASS[c[2] as usize]
            | CLASS[c[3] as usize]
            | CLASS[c[4] as usize]
            | CLASS[c[5] as usize]
            | CLASS[c[6] as usize]
            | CLASS[c[7] as usize];
    }
    for &b in chunks.remainder() {
        acc |= CLASS[b as usize];
    }
    acc
}

/// `CTRL` and `HIGH` of a whole command line, eight bytes per step with
/// word arithmetic (every line of every client goes through here). The
/// tail is read as one more word, overlapping the last full one or padded
/// with spaces, so that no byte goes through a per-byte loop.
fn line_classes(line: &[u8]) -> u8 {
    let mut chunks = line.chunks_exact(8);
    let mut acc = 0u8;
    for c in &mut chunks {
        acc |= word_classes(u64::from_le_bytes(c.try_into().unwrap_or([b' '; 8])));
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if line.len() >= 8 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&line[line.len() - 8..]);
            acc |= word_classes(u64::from_le_bytes(w));
        } else {
            // `DATA`, `QUIT` and the like: a word padded through memory
            // would stall on the copy longer than reading the octets.
            acc |= classes(tail) & (CTRL | HIGH);
        }
    }
    acc
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HI: u64 = 0x8080_8080_8080_8080;

/// `CTRL` and `HIGH` of eight bytes at once.
fn word_classes(x: u64) -> u8 {
    let t = x & LO7;
    let ascii = !x & HI;
    // Per byte, no carries between bytes since t <= 0x7f:
    let below_space = !(t + 0x60 * ONES) & ascii;
    let del = (t + ONES) & ascii;
    let y = x ^ (0x09 * ONES);
    let tab = !(((y & LO7) + LO7) | y) & HI;
    let ctrl = (below_space & !tab) | del;
    (if ctrl != 0 { CTRL } else { 0 }) | (if x & HI != 0 { HIGH } else { 0 })
}

/// Where the first LF of `bytes` is. Command lines are short, where
/// `memchr`'s dispatch and set-up cost more than the search (a sixth of the
/// parser's time in the benchmark): the first 64 octets are read eight at
/// a time with word arithmetic, the rest is left to `memchr`.
pub fn line_end(bytes: &[u8]) -> Option<usize> {
    let head = bytes.len().min(64);
    if head < 8 {
        return short_line_end(bytes);
    }
    let mut at = 0;
    while at + 8 <= head {
        if let Some(k) = first_lf(word(&bytes[at..at + 8])) {
            return Some(at + k);
        }
        at += 8;
    }
    // The tail as one more word, overlapping the last one read.
    if at < head {
        if let Some(k) = first_lf(word(&bytes[head - 8..head])) {
            return Some(head - 8 + k);
        }
    }
    long_line_end(bytes, head)
}

/// Eight octets as one little-endian word.
fn word(w: &[u8]) -> u64 {
    u64::from_le_bytes(w.try_into().unwrap_or([0; 8]))
}

/// Which octet of the word `x` is the first LF.
fn first_lf(x: u64) -> Option<usize> {
    let x = x ^ (u64::from(b'\n') * ONES);
    // A zero byte of `x` is an LF; the lowest one flagged is exact (a
    // borrow can only flag bytes above a real zero).
    let zero = x.wrapping_sub(ONES) & !x & HI;
    (zero != 0).then(|| zero.trailing_zeros() as usize / 8)
}

/// [`line_end`] of fewer than eight octets (`DATA`, `QUIT`…): the first
/// and the last four side by side in one word (they overlap), or the
/// octets one by one below four.
fn short_line_end(bytes: &[u8]) -> Option<usize> {
    let n = bytes.len();
    if n < 4 {
        return bytes.iter().position(|&b| b == b'\n');
    }
    let four = |w: &[u8]| u64::from(u32::from_le_bytes(w.try_into().unwrap_or([0; 4])));
    let x = four(&bytes[..4]) | four(&bytes[n - 4..]) << 32;
    // No LF in the first four means no borrow reaches the last four.
    first_lf(x).map(|k| if k < 4 { k } else { n + k - 8 })
}

/// [`line_end`] past the first 64 octets: pipelined input, long lines.
#[cold]
fn long_line_end(bytes: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', &bytes[from..]).map(|i| from + i)
}

/// A parsed command line, borrowing from the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO name`: one word, checked for shape only; its value is compared
    /// (the local-HELO check), never trusted.
    Helo(&'a str),
    /// `EHLO name`: as HELO, and asks for the ESMTP extensions.
    Ehlo(&'a str),
    /// `MAIL FROM:<path> [parameters]`.
    Mail {
        /// The reverse-path; `<>` is allowed.
        from: PathArg<'a>,
        /// The ESMTP parameters after the path.
        params: MailParams<'a>,
    },
    /// `RCPT TO:<path>`. No RCPT parameter is offered (no DSN), so any is
    /// refused.
    Rcpt {
        /// The forward-path; never `<>`.
        to: PathArg<'a>,
    },
    /// `DATA`, without arguments.
    Data,
    /// `RSET`, without arguments.
    Rset,
    /// `NOOP`; an argument is allowed and ignored (RFC 5321 §4.1.1.9).
    Noop,
    /// `QUIT`, without arguments.
    Quit,
    /// `VRFY` and its argument, as written; the argument is required.
    Vrfy(&'a str),
    /// `EXPN` and its argument, as written; the argument is required.
    Expn(&'a str),
    /// `HELP` and its argument, empty when there is none.
    Help(&'a str),
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism as written, in any case.
        mechanism: &'a str,
        /// The initial response, base64 as written (`=` for an empty one).
        initial: Option<&'a str>,
    },
    /// `STARTTLS`, without arguments.
    Starttls,
    /// `BDAT size [LAST]` (RFC 3030): `size` octets of message follow the
    /// line, whatever the reply.
    Bdat {
        /// The octets that follow; a value too large for `u64` reads as
        /// `u64::MAX`.
        size: u64,
        /// `LAST`: this chunk ends the message.
        last: bool,
    },
}

/// A path as written: `<>` or `<[@route:]local@domain>`, syntax checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathArg<'a> {
    /// `<>`, the null path: MAIL accepts it, RCPT does not.
    Null,
    /// A mailbox, with its source route if it was written with one; each
    /// part as written.
    Mailbox {
        /// `@a,@b` without the colon; empty when there is no route.
        route: &'a str,
        /// Quotes included.
        local: &'a str,
        /// `None` for an unqualified address (`<postmaster>`).
        domain: Option<&'a str>,
    },
}

impl PathArg<'_> {
    /// The canonical form, for the policy.
    pub fn to_path(&self) -> Result<address::Path, AddressError> {
        match *self {
            PathArg::Null => Ok(address::Path::NULL),
            PathArg::Mailbox { route, local, domain } => {
                let mut r = Vec::new();
                if !route.is_empty() {
                    for hop in route.split(',') {
                        let d = &hop[1..];
                        r.push(address::canonical_domain(d).map_err(|_| AddressError::BadRoute)?);
                    }
                }
                Ok(address::Path {
                    route: r,
                    mailbox: Some(address::Mailbox::from_parts(local, domain)?),
                })
            }
        }
    }

    /// True if any byte is outside ASCII: such an address needs SMTPUTF8.
    pub fn is_utf8(&self) -> bool {
        match self {
            PathArg::Null => false,
            PathArg::Mailbox { route, local, domain } => {
                !route.is_ascii() || !local.is_ascii() || domain.is_some_and(|d| !d.is_ascii())
            }
        }
    }
}

/// The `BODY=` parameter of MAIL FROM (RFC 6152).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT`.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// The ESMTP parameters of MAIL FROM that we offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailParams<'a> {
    /// `SIZE=` (RFC 1870): the size the client declares, in octets; a value
    /// too large for `u64` reads as `u64::MAX`.
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152), if given.
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531) was given: addresses of this transaction may
    /// be non-ASCII.
    pub smtputf8: bool,
    /// `AUTH=` (RFC 4954), xtext as written.
    pub auth: Option<&'a str>,
}

/// Why a line is not a command we can act on. The session turns each into
/// its reply code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a verb we know: 500 5.5.1.
    UnknownCommand,
    /// Bytes that cannot be in a command (NUL, other controls, bad UTF-8): 500 5.5.2.
    BadCharacters,
    /// A known verb with bad arguments: 501 5.5.4.
    Syntax(&'static str),
    /// The path of MAIL or RCPT: 501 5.1.7 or 501 5.1.3.
    Address(AddressError),
    /// An ESMTP parameter we do not offer: 555 5.5.4.
    UnknownParameter,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownCommand => f.write_str("command not recognized"),
            ParseError::BadCharacters => f.write_str("invalid characters in command"),
            ParseError::Syntax(s) => f.write_str(s),
            ParseError::Address(e) => write!(f, "{e}"),
            ParseError::UnknownParameter => f.write_str("unsupported ESMTP parameter"),
        }
    }
}

/// Parses one command line, without its CRLF.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    // Control characters other than TAB never belong in a command; a NUL is a
    // classic way to make two parsers disagree.
    let class = line_classes(line);
    if class & CTRL != 0 {
        return Err(ParseError::BadCharacters);
    }
    let line = if class & HIGH == 0 {
        // SAFETY: every byte is below 0x80, so the line is ASCII and
        // therefore valid UTF-8; this skips a second pass over it.
        unsafe { std::str::from_utf8_unchecked(line) }
    } else {
        std::str::from_utf8(line).map_err(|_| ParseError::BadCharacters)?
    };
    // Every verb has four letters but STARTTLS: read them as one word
    // instead of looking for the end of the verb first.
    let b = line.as_bytes();
    let verb_len = match b.get(4) {
        None if b.len() == 4 => 4,
        Some(&c) if is_space(c) => 4,
        _ if b.len() >= 8
            && !b[..8].iter().any(|&c| is_space(c))
            && b.get(8).is_none_or(|&c| is_space(c)) =>
        {
            8
        }
        _ => return Err(ParseError::UnknownCommand),
    };
    let verb = &line[..verb_len];
    let args = trim(&line[verb_len..]);
    let key = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0xdfdf_dfdf;
    // Each arm gives its own `Result`, so that a command is written once,
    // where the caller wants it, and not copied out of a `?`.
    match (key, verb_len) {
        (0x4845_4c4f, 4) => domain_arg(args).map(Command::Helo),
        (0x4548_4c4f, 4) => domain_arg(args).map(Command::Ehlo),
        (0x4d41_494c, 4) => parse_mail(args),
        (0x5243_5054, 4) => parse_rcpt(args),
        (0x4441_5441, 4) => no_args(args, Command::Data),
        (0x5253_4554, 4) => no_args(args, Command::Rset),
        (0x4e4f_4f50, 4) => Ok(Command::Noop),
        (0x5155_4954, 4) => no_args(args, Command::Quit),
        (0x5652_4659, 4) => nonempty(args, "VRFY needs an argument").map(Command::Vrfy),
        (0x4558_504e, 4) => nonempty(args, "EXPN needs an argument").map(Command::Expn),
        (0x4845_4c50, 4) => Ok(Command::Help(args)),
        (0x4155_5448, 4) => parse_auth(args),
        (0x4244_4154, 4) => parse_bdat(args),
        (0x5354_4152, 8) if verb[4..].eq_ignore_ascii_case("TTLS") => no_args(args, Command::Starttls),
        _ => Err(ParseError::UnknownCommand),
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_space_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The words of `s` between spaces and tabs, read byte by byte (the
/// separators are ASCII, so every cut is on a character boundary).
fn words(s: &str) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        let start = i;
        while i < b.len() && !is_space(b[i]) {
            i += 1;
        }
        Some(&s[start..i])
    })
}

fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_space(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_space(c)).map_or(start, |e| e + 1);
    &s[start..end]
}

fn no_args<'a>(args: &str, c: Command<'a>) -> Result<Command<'a>, ParseError> {
    if args.is_empty() {
        Ok(c)
    } else {
        Err(ParseError::Syntax("no arguments allowed"))
    }
}

fn nonempty<'a>(args: &'a str, why: &'static str) -> Result<&'a str, ParseError> {
    if args.is_empty() {
        Err(ParseError::Syntax(why))
    } else {
        Ok(args)
    }
}

/// The HELO/EHLO argument: one word, a domain or an address literal. Its
/// value is only compared, never trusted, so the check is for shape alone.
fn domain_arg(args: &str) -> Result<&str, ParseError> {
    if args.is_empty() {
        return Err(ParseError::Syntax("HELO/EHLO needs a domain or address literal"));
    }
    if args.bytes().any(is_space) {
        return Err(ParseError::Syntax("HELO/EHLO takes one argument"));
    }
    Ok(args)
}

/// Strips `keyword:` case-insensitively, allowing the space that many
/// clients put after the colon.
fn strip_keyword<'a>(args: &'a str, kw: &str) -> Option<&'a str> {
    let n = kw.len();
    let b = args.as_bytes();
    if b.len() >= n && b[..n].eq_ignore_ascii_case(kw.as_bytes()) {
        let mut i = n;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        Some(&args[i..])
    } else {
        None
    }
}

/// Splits the path (bracketed, or bare for old clients) from what follows.
fn split_path(s: &str) -> Result<(&str, &str), ParseError> {
    let b = s.as_bytes();
    if b.first() == Some(&b'<') {
        // Usually no quotes: the first '>' closes the path.
        match memchr::memchr2(b'>', b'"', b) {
            Some(i) if b[i] == b'>' => return Ok((&s[1..i], &s[i + 1..])),
            None => return Err(ParseError::Address(AddressError::MissingBracket)),
            Some(_) => {}
        }
        // Find the closing '>' outside quotes.
        let mut i = 1;
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'>' if !quoted => return Ok((&s[1..i], &s[i + 1..])),
                _ => {}
            }
            i += 1;
        }
        Err(ParseError::Address(AddressError::MissingBracket))
    } else {
        let end = s.bytes().position(is_space).unwrap_or(s.len());
        if end == 0 {
            return Err(ParseError::Address(AddressError::Empty));
        }
        Ok((&s[..end], &s[end..]))
    }
}

/// The path at the start of `s` and what follows it. Inlined: returned
/// through memory, the path is stored in eight-byte halves and read back in
/// sixteen, which stalls the load on every MAIL and RCPT.
#[inline(always)]
fn path_and_rest(s: &str, allow_null: bool) -> Result<(PathArg<'_>, &str), ParseError> {
    if let Some(rest) = s.strip_prefix("<>") {
        return if allow_null {
            Ok((PathArg::Null, rest))
        } else {
            Err(ParseError::Address(AddressError::Empty))
        };
    }
    if let Some(spans) = plain_path(s) {
        return Ok(spans.split(s));
    }
    let (inner, rest) = split_path(s)?;
    Ok((parse_path_arg(inner, allow_null)?, rest))
}

/// One pass over a path without escapes: `<local@domain>`, with or
/// without a source route of domain names, the local part quoted or not.
/// Anything else (backslashes, address literals, errors) is left to the
/// general parser (`None`), so the two cannot disagree on what they both
/// accept.
fn plain_path(s: &str) -> Option<Spans> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') || b.len() > usize::from(u16::MAX) {
        return None;
    }
    let mut i = 1;
    // `@a,@b:`: each hop a domain name.
    let route_end = if b.get(1) == Some(&b'@') {
        loop {
            let start = i + 1;
            i = domain_name_end(b, start);
            if i == start {
                return None;
            }
            match b.get(i) {
                Some(b',') if b.get(i + 1) == Some(&b'@') => i += 1,
                Some(b':') => break i,
                _ => return None,
            }
        }
    } else {
        0
    };
    let local_start = if route_end == 0 { 1 } else { route_end + 1 };
    i = local_start;
    match b.get(i) {
        None | Some(b'@' | b'>') => return None,
        Some(b'"') => {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    return None;
                }
                i += 1;
            }
            i += 1;
            if !matches!(b.get(i), Some(b'@' | b'>')) {
                return None;
            }
        }
        Some(_) => {
            let (end, local_class) = run_end(b, i, ENDS_LOCAL);
            i = end;
            if i == b.len() || local_class & NOT_LOCAL != 0 {
                return None;
            }
        }
    }
    // Offsets below `u16::MAX` (checked above): the spans fit in one
    // register, where a `PathArg` would be returned through memory and
    // stall the caller's wider reads of it.
    let local_end = i as u16;
    if b[i] == b'>' {
        return Some(Spans {
            route_end: route_end as u16,
            local_end,
            domain_end: 0,
        });
    }
    let start = i + 1;
    i = domain_name_end(b, start);
    if i == start || b.get(i) != Some(&b'>') {
        return None;
    }
    Some(Spans {
        route_end: route_end as u16,
        local_end,
        domain_end: i as u16,
    })
}

/// Where [`plain_path`] found the parts of `<[route:]local[@domain]>`:
/// the colon after the route (0: none), the end of the local part, the
/// closing bracket after the domain (0: no domain).
#[derive(Clone, Copy)]
struct Spans {
    route_end: u16,
    local_end: u16,
    domain_end: u16,
}

impl Spans {
    /// The path these spans mark in `s`, and what follows it.
    #[inline(always)]
    fn split(self, s: &str) -> (PathArg<'_>, &str) {
        let (route_end, local_end) = (usize::from(self.route_end), usize::from(self.local_end));
        let route = if route_end == 0 { "" } else { &s[1..route_end] };
        let local = &s[if route_end == 0 { 1 } else { route_end + 1 }..local_end];
        let (domain, close) = match usize::from(self.domain_end) {
            0 => (None, local_end),
            d => (Some(&s[local_end + 1..d]), d),
        };
        (PathArg::Mailbox { route, local, domain }, &s[close + 1..])
    }
}

/// Where the run of domain-name bytes that starts at `start` ends.
fn domain_name_end(b: &[u8], start: usize) -> usize {
    run_end(b, start, NOT_DOMAIN).0
}

/// Where the run of bytes from `start` whose class has no bit of `stop`
/// ends, and the union of their classes; four bytes per step while no
/// byte of the four stops it.
fn run_end(b: &[u8], start: usize, stop: u8) -> (usize, u8) {
    let mut i = start;
    let mut acc = 0u8;
    while let Some(q) = b.get(i..i + 4) {
        let c = CLASS[q[0] as usize] | CLASS[q[1] as usize] | CLASS[q[2] as usize] | CLASS[q[3] as usize];
        if c & stop != 0 {
            break;
        }
        acc |= c;
        i += 4;
    }
    while i < b.len() && CLASS[b[i] as usize] & stop == 0 {
        acc |= CLASS[b[i] as usize];
        i += 1;
    }
    (i, acc)
}

fn parse_path_arg(inner: &str, allow_null: bool) -> Result<PathArg<'_>, ParseError> {
    if inner.is_empty() {
        return if allow_null {
            Ok(PathArg::Null)
        } else {
            Err(ParseError::Address(AddressError::Empty))
        };
    }
    let (route, mailbox) = address::split_route(inner).map_err(ParseError::Address)?;
    if let Some(r) = route {
        for hop in r.split(',') {
            let d = hop
                .strip_prefix('@')
                .filter(|d| {
                    !d.is_empty() && !d.bytes().any(|b| matches!(b, b'@' | b':' | b'<' | b'>' | b'"'))
                })
                .ok_or(ParseError::Address(AddressError::BadRoute))?;
            check_domain_shape(d).map_err(|_| ParseError::Address(AddressError::BadRoute))?;
        }
    }
    let (local, domain) = address::split_mailbox(mailbox).map_err(ParseError::Address)?;
    check_local_shape(local)?;
    if let Some(d) = domain {
        check_domain_shape(d).map_err(ParseError::Address)?;
    }
    Ok(PathArg::Mailbox {
        route: route.unwrap_or(""),
        local,
        domain,
    })
}

/// Shape of a local part: no space or bracket outside quotes. Full syntax is
/// checked when it is canonicalized.
fn check_local_shape(local: &str) -> Result<(), ParseError> {
    if local.is_empty() {
        return Err(ParseError::Address(AddressError::EmptyLocalPart));
    }
    if !local.starts_with('"') && classes(local.as_bytes()) & NOT_LOCAL != 0 {
        return Err(ParseError::Address(AddressError::BadLocalPart));
    }
    Ok(())
}

/// Shape of a domain: a literal in brackets, or name characters. Full
/// validation (IDNA, literal values) happens in canonicalization.
fn check_domain_shape(d: &str) -> Result<(), AddressError> {
    if d.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if d.starts_with('[') {
        return if d.ends_with(']')
            && d.len() > 2
            && !d[1..d.len() - 1]
                .bytes()
                .any(|b| matches!(b, b'[' | b']' | b'\\' | b'"' | b'<' | b'>'))
        {
            Ok(())
        } else {
            Err(AddressError::InvalidLiteral)
        };
    }
    // The class table's rule, which the one-pass reader uses too.
    if classes(d.as_bytes()) & NOT_DOMAIN == 0 {
        Ok(())
    } else {
        Err(AddressError::BadDomain)
    }
}

fn parse_mail(args: &str) -> Result<Command<'_>, ParseError> {
    let rest = strip_keyword(args, "FROM:").ok_or(ParseError::Syntax("expected MAIL FROM:<address>"))?;
    let (from, params_text) = path_and_rest(rest, true)?;
    let mut params = MailParams::default();
    for p in words(params_text) {
        let (key, value) = match p.bytes().position(|b| b == b'=') {
            Some(i) => (&p[..i], Some(&p[i + 1..])),
            None => (p, None),
        };
        let dup = || ParseError::Syntax("duplicate ESMTP parameter");
        if key.eq_ignore_ascii_case("SIZE") {
            let v = value.ok_or(ParseError::Syntax("SIZE needs a value"))?;
            if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Syntax("SIZE value is not a number"));
            }
            if params.size.replace(v.parse().unwrap_or(u64::MAX)).is_some() {
                return Err(dup());
            }
        } else if key.eq_ignore_ascii_case("BODY") {
            let body = match value {
                Some(v) if v.eq_ignore_ascii_case("7BIT") => Body::SevenBit,
                Some(v) if v.eq_ignore_ascii_case("8BITMIME") => Body::EightBitMime,
                _ => return Err(ParseError::UnknownParameter),
            };
            if params.body.replace(body).is_some() {
                return Err(dup());
            }
        } else if key.eq_ignore_ascii_case("SMTPUTF8") {
            if value.is_some() {
                return Err(ParseError::Syntax("SMTPUTF8 takes no value"));
            }
            if std::mem::replace(&mut params.smtputf8, true) {
                return Err(dup());
            }
        } else if key.eq_ignore_ascii_case("AUTH") {
            let v = value
                .filter(|v| !v.is_empty())
                .ok_or(ParseError::Syntax("AUTH= needs a value"))?;
            if params.auth.replace(v).is_some() {
                return Err(dup());
            }
        } else {
            return Err(ParseError::UnknownParameter);
        }
    }
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(args: &str) -> Result<Command<'_>, ParseError> {
    let rest = strip_keyword(args, "TO:").ok_or(ParseError::Syntax("expected RCPT TO:<address>"))?;
    let (to, params_text) = path_and_rest(rest, false)?;
    // We offer no RCPT parameters (no DSN), so any is unknown.
    if !trim(params_text).is_empty() {
        return Err(ParseError::UnknownParameter);
    }
    Ok(Command::Rcpt { to })
}

/// `BDAT` arguments: a size in digits, then `LAST` or nothing. A size of
/// more than 20 digits is refused rather than read as a number: nothing
/// sends that much.
fn parse_bdat(args: &str) -> Result<Command<'_>, ParseError> {
    let mut it = words(args);
    let size = it.next().ok_or(ParseError::Syntax("BDAT needs a chunk size"))?;
    if size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("BDAT chunk size is not a number"));
    }
    let last = match it.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("expected BDAT size [LAST]")),
    };
    if it.next().is_some() {
        return Err(ParseError::Syntax("expected BDAT size [LAST]"));
    }
    Ok(Command::Bdat {
        size: size.parse().unwrap_or(u64::MAX),
        last,
    })
}

fn parse_auth(args: &str) -> Result<Command<'_>, ParseError> {
    let mut it = args.split(is_space_char).filter(|s| !s.is_empty());
    let mechanism = it.next().ok_or(ParseError::Syntax("AUTH needs a mechanism"))?;
    let initial = it.next();
    if it.next().is_some() {
        return Err(ParseError::Syntax(
            "AUTH takes a mechanism and an initial response",
        ));
    }
    Ok(Command::Auth { mechanism, initial })
}

impl fmt::Display for PathArg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathArg::Null => f.write_str("<>"),
            PathArg::Mailbox { route, local, domain } => {
                f.write_str("<")?;
                if !route.is_empty() {
                    write!(f, "{route}:")?;
                }
                f.write_str(local)?;
                if let Some(d) = domain {
                    write!(f, "@{d}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// The canonical wire form (without CRLF): what a strict client would send.
/// Parsing it again gives the same command.
impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Helo(d) => write!(f, "HELO {d}"),
            Command::Ehlo(d) => write!(f, "EHLO {d}"),
            Command::Mail { from, params } => {
                write!(f, "MAIL FROM:{from}")?;
                if let Some(s) = params.size {
                    write!(f, " SIZE={s}")?;
                }
                match params.body {
                    Some(Body::SevenBit) => f.write_str(" BODY=7BIT")?,
                    Some(Body::EightBitMime) => f.write_str(" BODY=8BITMIME")?,
                    None => {}
                }
                if params.smtputf8 {
                    f.write_str(" SMTPUTF8")?;
                }
                if let Some(a) = params.auth {
                    write!(f, " AUTH={a}")?;
                }
                Ok(())
            }
            Command::Rcpt { to } => write!(f, "RCPT TO:{to}"),
            Command::Data => f.write_str("DATA"),
            Command::Rset => f.write_str("RSET"),
            Command::Noop => f.write_str("NOOP"),
            Command::Quit => f.write_str("QUIT"),
            Command::Vrfy(a) => write!(f, "VRFY {a}"),
            Command::Expn(a) => write!(f, "EXPN {a}"),
            Command::Help("") => f.write_str("HELP"),
            Command::Help(a) => write!(f, "HELP {a}"),
            Command::Auth {
                mechanism,
                initial: None,
            } => write!(f, "AUTH {mechanism}"),
            Command::Auth {
                mechanism,
                initial: Some(i),
            } => write!(f, "AUTH {mechanism} {i}"),
            Command::Starttls => f.write_str("STARTTLS"),
            Command::Bdat { size, last: false } => write!(f, "BDAT {size}"),
            Command::Bdat { size, last: true } => write!(f, "BDAT {size} LAST"),
        }
    }
}

#[cfg(test)]
mod tests;
