//! SMTP replies: what the server sends, and how a client reads it back.
//!
//! Every reply the server sends carries an enhanced status code (RFC 3463),
//! and every line is `ddd[ -]text<CRLF>`, at most 512 octets (RFC 5321
//! §4.5.3.1.5). The same module parses replies for the client session and for
//! the oracle, which checks that every line the server sent is well formed.

use std::fmt;

/// Longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
pub const MAX_REPLY_LINE: usize = 512;

/// An enhanced status code `class.subject.detail` (RFC 3463).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Enhanced(pub u8, pub u16, pub u16);

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One reply: a code, an optional enhanced code, and one or more text lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2).
    pub code: u16,
    /// Written at the start of every line. `None` for the greeting and the
    /// HELO/EHLO replies, and for a read reply whose first line has none.
    pub enhanced: Option<Enhanced>,
    /// The text of each line, without code, separator, enhanced code or
    /// CRLF. An empty list is written as one line without text.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: Enhanced, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced code: only the greeting (220) and the
    /// EHLO/HELO replies, where RFC 2034 puts none.
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// 2xx or 3xx: done, or go on (`354`, `334`).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: refused for now; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: refused; repeating the command will not help.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Appends the wire form to `out`. Text is cleaned of CR, LF and other
    /// control characters and cut so that no line exceeds 512 octets.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            write_line(out, self.code, i + 1 < n, self.enhanced, text);
        }
    }

    /// The wire form, as [`Reply::write_to`] writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        self.write_to(&mut v);
        v
    }

    /// The whole reply as text, lines joined by `\n`, without the CRLFs.
    pub fn text(&self) -> String {
        let b = self.to_bytes();
        let s = String::from_utf8_lossy(&b);
        s.trim_end_matches("\r\n").replace("\r\n", "\n")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Writes one reply line: the code, `-` if more lines follow, the enhanced
/// code, and the text cleaned of control characters and cut so that the
/// line with its CRLF stays within 512 octets. Allocates nothing: the
/// session writes every reply through it.
pub fn write_line(out: &mut Vec<u8>, code: u16, more: bool, enhanced: Option<Enhanced>, text: &str) {
    let start = out.len();
    out.extend_from_slice(itoa3(code).as_slice());
    out.push(if more { b'-' } else { b' ' });
    if let Some(Enhanced(class, subject, detail)) = enhanced {
        push_num(out, class.into());
        out.push(b'.');
        push_num(out, subject);
        out.push(b'.');
        push_num(out, detail);
        if !text.is_empty() {
            out.push(b' ');
        }
    }
    for &b in text.as_bytes() {
        if out.len() - start >= MAX_REPLY_LINE - 2 {
            break;
        }
        out.push(if b < 0x20 || b == 0x7f { b'?' } else { b });
    }
    out.extend_from_slice(b"\r\n");
}

fn push_num(out: &mut Vec<u8>, n: u16) {
    if n >= 10 {
        push_num(out, n / 10);
    }
    out.push(b'0' + (n % 10) as u8);
}

fn itoa3(code: u16) -> [u8; 3] {
    let c = code.min(999);
    [
        b'0' + (c / 100) as u8,
        b'0' + (c / 10 % 10) as u8,
        b'0' + (c % 10) as u8,
    ]
}

/// The length of the first whole reply in `buf` (its last line is the one
/// without `-` after the code), or `None` if it has not all arrived.
pub fn whole_reply_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let nl = memchr::memchr(b'\n', &buf[pos..])?;
        let line = &buf[pos..pos + nl + 1];
        pos += nl + 1;
        if line.get(3) != Some(&b'-') {
            return Some(pos);
        }
    }
}

/// Why a reply line is not well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// A line longer than [`MAX_REPLY_LINE`] octets with its CRLF, or a
    /// reply longer than [`ReplyReader::LIMIT`]. The number is the length
    /// seen, which may be only where reading stopped.
    TooLong(usize),
    /// Ended by a bare LF, not CRLF.
    NoCrlf,
    /// Does not start with three digits, the first of them 2 to 5.
    BadCode,
    /// The code is followed by something other than a space, `-` or the
    /// end of the line.
    BadSeparator,
    /// A control character other than TAB (DEL and a bare CR included)
    /// after the code.
    ControlCharacter,
    /// A line of a multi-line reply has another code than the first line.
    CodeChanged {
        /// The code of the first line.
        first: u16,
        /// The code of the line that differs.
        then: u16,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong(n) => write!(f, "reply line of {n} octets (limit {MAX_REPLY_LINE})"),
            LineError::NoCrlf => f.write_str("reply line not ended by CRLF"),
            LineError::BadCode => f.write_str("reply line does not start with a 3-digit code 2xx-5xx"),
            LineError::BadSeparator => f.write_str("reply code not followed by ' ', '-' or CRLF"),
            LineError::ControlCharacter => f.write_str("control character in reply text"),
            LineError::CodeChanged { first, then } => {
                write!(f, "multi-line reply changes code from {first} to {then}")
            }
        }
    }
}

/// Checks one reply line, CRLF included: `ddd[ -]text<CRLF>`, ≤ 512 octets.
pub fn check_line(line: &[u8]) -> Result<(u16, bool), LineError> {
    if line.len() > MAX_REPLY_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return Err(LineError::NoCrlf);
    };
    if body.len() < 3 || !body[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&body[0]) {
        return Err(LineError::BadCode);
    }
    let code = (body[0] - b'0') as u16 * 100 + (body[1] - b'0') as u16 * 10 + (body[2] - b'0') as u16;
    let more = match body.get(3) {
        None | Some(b' ') => false,
        Some(b'-') => true,
        Some(_) => return Err(LineError::BadSeparator),
    };
    if body[3.min(body.len())..]
        .iter()
        .any(|&b| b < 0x20 && b != b'\t' || b == 0x7f)
    {
        return Err(LineError::ControlCharacter);
    }
    Ok((code, more))
}

/// Reads whole replies out of a byte stream from a server, as a client does.
///
/// Bytes go in with [`ReplyReader::push`]; complete replies come out of
/// [`ReplyReader::next_reply`]. A malformed line is an error, not a panic; the
/// buffer is bounded by [`ReplyReader::LIMIT`].
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    lines: Vec<String>,
    code: Option<u16>,
}

impl ReplyReader {
    /// The most octets a reply may take before the reader gives up on it.
    pub const LIMIT: usize = 64 * 1024;

    /// A reader with nothing buffered.
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Appends bytes from the server, in any split; nothing is read until
    /// [`ReplyReader::next_reply`].
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, LineError> {
        loop {
            let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
                if self.buf.len() > MAX_REPLY_LINE || self.lines.len() * MAX_REPLY_LINE > Self::LIMIT {
                    return Err(LineError::TooLong(self.buf.len()));
                }
                return Ok(None);
            };
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let (code, more) = check_line(&line)?;
            if let Some(first) = self.code {
                if first != code {
                    self.code = None;
                    self.lines.clear();
                    return Err(LineError::CodeChanged { first, then: code });
                }
            }
            self.code = Some(code);
            let text = String::from_utf8_lossy(&line[4.min(line.len() - 2)..line.len() - 2]).into_owned();
            self.lines.push(text);
            if self.lines.len() * MAX_REPLY_LINE > Self::LIMIT {
                return Err(LineError::TooLong(Self::LIMIT));
            }
            if !more {
                let lines = std::mem::take(&mut self.lines);
                self.code = None;
                let enhanced = parse_enhanced(code, &lines[0]);
                let lines = match enhanced {
                    Some(_) => lines
                        .into_iter()
                        .map(|l| match l.split_once(' ') {
                            Some((e, rest)) if parse_enhanced(code, e).is_some() => rest.to_string(),
                            _ if parse_enhanced(code, &l).is_some() => String::new(),
                            _ => l,
                        })
                        .collect(),
                    None => lines,
                };
                return Ok(Some(Reply {
                    code,
                    enhanced,
                    lines,
                }));
            }
        }
    }
}

/// The enhanced code at the start of `text`, if its class matches `code`.
fn parse_enhanced(code: u16, text: &str) -> Option<Enhanced> {
    let word = text.split(' ').next()?;
    let mut it = word.split('.');
    let class: u8 = it.next()?.parse().ok()?;
    let subject: u16 = it.next()?.parse().ok()?;
    let detail: u16 = it.next()?.parse().ok()?;
    if it.next().is_some() || u16::from(class) != code / 100 {
        return None;
    }
    Some(Enhanced(class, subject, detail))
}

#[cfg(test)]
mod tests;
