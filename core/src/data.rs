//! The DATA phase reader: dot-unstuffing and the end-of-data sequence.
//!
//! Only `<CRLF>.<CRLF>` ends a message. A bare LF or bare CR never starts a
//! new line here, so `\n.\n`, `\r.\r\n`, `\r\n.\r\r\n` and the other SMTP
//! smuggling sequences stay inside the message instead of ending it; the
//! message is then refused as a whole because it holds a bare CR or LF. That
//! is the inbound half of the smuggling defence; the outbound half is that
//! nothing with a bare CR or LF is ever handed on.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// After a CRLF (or at the start of the data).
    LineStart,
    /// A `.` at the start of a line: a stuffing dot or the start of the end.
    Dot,
    /// `.` `CR` at the start of a line: one LF away from the end.
    DotCr,
    /// Inside a line.
    Middle,
    /// A CR inside a line, waiting to see whether an LF follows.
    Cr,
}

/// Streams a message body in, keeps at most `limit` octets of it, and says
/// where it ended.
#[derive(Debug)]
pub struct DataReader {
    state: State,
    body: Vec<u8>,
    limit: usize,
    /// Octets of the unstuffed body, including the ones not kept.
    size: usize,
    /// A bare CR, a bare LF or a NUL was seen.
    tainted: bool,
    /// Injected bug `lf-ends-data`: a bare LF ends a line, as in the
    /// servers that SMTP smuggling exploits.
    lf_ends_line: bool,
}

/// How the message ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Well formed and within the limit: the unstuffed body, CRLF lines.
    Ok(Vec<u8>),
    /// Larger than the limit; the body was discarded as it streamed.
    TooBig(usize),
    /// Holds a bare CR, a bare LF or a NUL.
    Tainted,
}

impl DataReader {
    pub fn new(limit: usize) -> DataReader {
        DataReader {
            state: State::LineStart,
            body: Vec::new(),
            limit,
            size: 0,
            tainted: false,
            lf_ends_line: false,
        }
    }

    /// A reader whose buffer starts at the size the client declared (or a
    /// few KiB), so that a typical message needs one allocation.
    pub fn with_capacity(limit: usize, declared: usize) -> DataReader {
        DataReader {
            body: Vec::with_capacity(declared.max(8 * 1024).min(limit)),
            ..DataReader::new(limit)
        }
    }

    /// The reader with the `lf-ends-data` bug switched on.
    pub fn with_lf_bug(limit: usize) -> DataReader {
        DataReader {
            lf_ends_line: true,
            ..DataReader::new(limit)
        }
    }

    /// Octets of body held in memory: never more than the limit.
    pub fn buffered(&self) -> usize {
        self.body.len()
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size += bytes.len();
        if self.body.len() + bytes.len() <= self.limit {
            self.body.extend_from_slice(bytes);
        } else if self.body.capacity() > 0 {
            self.body = Vec::new();
        }
    }

    /// Feeds bytes. Returns `Some((consumed, ended))` when the end-of-data
    /// sequence was found (`consumed` octets of `input` belong to the
    /// message, the rest is the next command), `None` when all of `input`
    /// was taken and more is needed.
    pub fn feed(&mut self, input: &[u8]) -> Option<(usize, Ended)> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Middle => {
                    // Fast path: copy up to the next CR, LF or NUL in one go.
                    let rest = &input[i..];
                    let n = find_special(rest);
                    if n > 0 {
                        self.emit(&rest[..n]);
                        i += n;
                        continue;
                    }
                    if input[i] == 0 {
                        self.tainted = true;
                        self.emit(b"\0");
                        i += 1;
                        continue;
                    }
                    let b = input[i];
                    i += 1;
                    if b == b'\r' {
                        self.state = State::Cr;
                    } else if self.lf_ends_line {
                        self.emit(b"\r\n");
                        self.state = State::LineStart;
                    } else {
                        // A bare LF: kept, flagged, and it does NOT start a line.
                        self.tainted = true;
                        self.emit(b"\n");
                    }
                }
                State::LineStart => {
                    if input[i] == b'.' {
                        i += 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Middle;
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        i += 1;
                        self.state = State::DotCr;
                    } else if input[i] == b'\n' && self.lf_ends_line {
                        return Some((i + 1, self.finish()));
                    } else {
                        // The dot was stuffing: drop it, the rest is text.
                        self.state = State::Middle;
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        return Some((i, self.finish()));
                    }
                    // `.` CR then not LF: the dot was stuffing, the CR is bare.
                    self.tainted = true;
                    self.emit(b"\r");
                    if b == b'\r' {
                        self.state = State::Cr;
                    } else {
                        self.state = State::Middle;
                        i -= 1;
                    }
                }
                State::Cr => {
                    let b = input[i];
                    if b == b'\n' {
                        i += 1;
                        self.emit(b"\r\n");
                        self.state = State::LineStart;
                    } else {
                        // The CR was bare; look at this byte again as text.
                        self.tainted = true;
                        self.emit(b"\r");
                        if b == b'\r' {
                            i += 1;
                        } else {
                            self.state = State::Middle;
                        }
                    }
                }
            }
        }
        None
    }

    fn finish(&mut self) -> Ended {
        if self.size > self.limit {
            Ended::TooBig(self.size)
        } else if self.tainted {
            Ended::Tainted
        } else {
            Ended::Ok(std::mem::take(&mut self.body))
        }
    }
}

/// The index of the first CR, LF or NUL in `b`, or its length. Eight
/// octets per step with word arithmetic: lines are short, and a library
/// search call costs more to set up than it saves on them.
fn find_special(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Flags the zero octets of `v`; a false flag can only sit above a true
    // one, so the lowest flag is exact.
    let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight octets"));
        let m = zeros(x ^ (ONES * b'\r' as u64)) | zeros(x ^ (ONES * b'\n' as u64)) | zeros(x);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !matches!(b[i], b'\r' | b'\n' | 0) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Option<(usize, Ended)> {
        DataReader::new(1 << 20).feed(input)
    }

    #[test]
    fn plain_message_and_unstuffing() {
        let (n, e) = run(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n").unwrap();
        assert_eq!(n, 24);
        assert_eq!(e, Ended::Ok(b"Subject: x\r\n\r\n.dot\r\n".to_vec()));
    }

    #[test]
    fn empty_message_ends_at_once() {
        assert_eq!(run(b".\r\n"), Some((3, Ended::Ok(Vec::new()))));
    }

    #[test]
    fn smuggling_sequences_never_end_data() {
        for seq in crate::check::SMUGGLING_SEQUENCES {
            let mut input = b"a".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(b"MAIL FROM:<x@y.example>\r\n");
            assert_eq!(run(&input), None, "{seq:?} ended DATA");
            input.extend_from_slice(b".\r\n");
            // Where the sequence left us mid-line, the final ".\r\n" is
            // text too; close the line first.
            let end = run(&input).or_else(|| {
                input.extend_from_slice(b"\r\n.\r\n");
                run(&input)
            });
            assert_eq!(end.map(|(_, e)| e), Some(Ended::Tainted), "{seq:?}");
        }
    }

    #[test]
    fn split_at_every_point_gives_the_same_result() {
        let input = b"a\r\n..b\r\nc\rd\r\n.\r\nNEXT";
        let whole = run(input);
        for cut in 0..input.len() {
            let mut r = DataReader::new(1 << 20);
            let got = match r.feed(&input[..cut]) {
                Some(x) => Some(x),
                None => r.feed(&input[cut..]).map(|(n, e)| (n + cut, e)),
            };
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn oversize_is_discarded_as_it_streams() {
        let mut r = DataReader::new(10);
        assert_eq!(r.feed(&[b'x'; 100]), None);
        assert!(r.buffered() <= 10);
        assert_eq!(r.feed(b"\r\n.\r\n"), Some((5, Ended::TooBig(102))));
    }

    #[test]
    fn word_search_finds_the_first_special_octet() {
        for len in 0..20 {
            for pos in 0..=len {
                for special in [b'\r', b'\n', 0] {
                    let mut b = vec![b'a'; len];
                    if pos < len {
                        b[pos] = special;
                        // A later special octet must not win.
                        if pos + 1 < len {
                            b[pos + 1] = b'\n';
                        }
                    }
                    assert_eq!(find_special(&b), pos.min(len), "len {len} pos {pos}");
                }
            }
        }
        // Octets next to the specials in value are not specials.
        assert_eq!(find_special(b"\x01\x0b\x0c\x0e\x09\xff\x8d\x8axx"), 10);
    }
}
