//! The DATA phase reader: dot-unstuffing and the end-of-data sequence.
//!
//! Only `<CRLF>.<CRLF>` ends a message. A bare LF or bare CR never starts a
//! new line here, so `\n.\n`, `\r.\r\n`, `\r\n.\r\r\n` and the other SMTP
//! smuggling sequences stay inside the message instead of ending it; the
//! message is then refused as a whole because it holds a bare CR or LF. That
//! is the inbound half of the smuggling defence; the outbound half is that
//! nothing with a bare CR or LF is ever handed on.
//!
//! The unstuffed octets go to a [`BodySink`] (`data/sink.rs`), which keeps
//! the body whole or hands it out in pieces.

mod sink;

pub use sink::BODY_PIECE;
pub(crate) use sink::BodySink;

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

/// Streams a message body in, passes it to its [`BodySink`], and says
/// where it ended.
#[derive(Debug)]
pub struct DataReader {
    state: State,
    sink: BodySink,
    /// A bare CR, a bare LF or a NUL was seen.
    tainted: bool,
    /// Injected bug `lf-ends-data`: a bare LF ends a line, as in the
    /// servers that SMTP smuggling exploits.
    lf_ends_line: bool,
}

/// How the message ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Well formed and within the limit: the unstuffed body, CRLF lines
    /// (while streaming, the part not handed out yet).
    Ok(Vec<u8>),
    /// Larger than the limit; the body was discarded as it streamed.
    TooBig(usize),
    /// Holds a bare CR, a bare LF or a NUL.
    Tainted,
}

impl DataReader {
    /// A reader that keeps the whole body, up to `limit` octets.
    #[cfg(test)]
    pub fn new(limit: usize) -> DataReader {
        DataReader::with_sink(BodySink::whole(limit, 0))
    }

    pub(crate) fn with_sink(sink: BodySink) -> DataReader {
        DataReader {
            state: State::LineStart,
            sink,
            tainted: false,
            lf_ends_line: false,
        }
    }

    /// The reader with the `lf-ends-data` bug switched on.
    pub(crate) fn with_lf_bug(sink: BodySink) -> DataReader {
        DataReader {
            lf_ends_line: true,
            ..DataReader::with_sink(sink)
        }
    }

    /// Octets of body held in memory: never more than the limit, nor more
    /// than a piece while streaming.
    pub fn buffered(&self) -> usize {
        self.sink.buffered()
    }

    /// A full piece of body to hand out now (streaming only).
    pub(crate) fn take_full_piece(&mut self) -> Option<Vec<u8>> {
        self.sink.take_full_piece()
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.sink.append(bytes);
    }

    fn taint(&mut self) {
        if !self.tainted {
            self.tainted = true;
            // Refused whatever follows: keep (and write) none of it.
            self.sink.drop_body();
        }
    }

    /// Feeds bytes. Returns how many octets of `input` were taken, and how
    /// the message ended if the end-of-data sequence was among them (the
    /// rest of `input` is then the next command). Fewer than all octets
    /// are taken without an end only while streaming, when a piece is full:
    /// take it ([`DataReader::take_full_piece`]) and feed the rest.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Ended>) {
        let mut i = 0;
        while i < input.len() {
            let room = self.sink.room();
            if room == 0 {
                return (i, None);
            }
            match self.state {
                State::Middle => {
                    // Fast path: copy up to the next CR, LF or NUL in one go.
                    let rest = &input[i..];
                    let n = find_special(rest).min(room);
                    if n > 0 {
                        self.emit(&rest[..n]);
                        i += n;
                        continue;
                    }
                    if input[i] == 0 {
                        self.taint();
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
                        // A bare LF: flagged, and it does NOT start a line.
                        self.taint();
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
                        return (i + 1, Some(self.finish()));
                    } else {
                        // The dot was stuffing: drop it, the rest is text.
                        self.state = State::Middle;
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        return (i, Some(self.finish()));
                    }
                    // `.` CR then not LF: the dot was stuffing, the CR is bare.
                    self.taint();
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
                        self.taint();
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
        (i, None)
    }

    fn finish(&mut self) -> Ended {
        if self.sink.too_big() {
            Ended::TooBig(self.sink.size())
        } else if self.tainted {
            Ended::Tainted
        } else {
            Ended::Ok(self.sink.take())
        }
    }
}

/// The index of the first CR, LF or NUL in `b`, or its length. Eight
/// octets per step with word arithmetic: lines are short, and a library
/// search call costs more to set up than it saves on them.
pub(crate) fn find_special(b: &[u8]) -> usize {
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
        match DataReader::new(1 << 20).feed(input) {
            (n, Some(e)) => Some((n, e)),
            (_, None) => None,
        }
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
                (n, Some(e)) => Some((n, e)),
                (n, None) => {
                    assert_eq!(n, cut, "a whole reader takes all it is fed");
                    match r.feed(&input[cut..]) {
                        (m, Some(e)) => Some((m + cut, e)),
                        (_, None) => None,
                    }
                }
            };
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn oversize_is_discarded_as_it_streams() {
        let mut r = DataReader::new(10);
        assert_eq!(r.feed(&[b'x'; 100]), (100, None));
        assert!(r.buffered() <= 10);
        assert_eq!(r.feed(b"\r\n.\r\n"), (5, Some(Ended::TooBig(102))));
    }

    #[test]
    fn streaming_hands_out_pieces_that_make_the_body() {
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz\r\n";
        let mut input = Vec::new();
        while input.len() < 5 * BODY_PIECE {
            input.extend_from_slice(line);
        }
        let body = input.clone();
        input.extend_from_slice(b".\r\n");
        let mut r = DataReader::with_sink(BodySink::streaming(1 << 30));
        let (mut got, mut pos) = (Vec::new(), 0);
        let ended = loop {
            let (n, ended) = r.feed(&input[pos..]);
            pos += n;
            assert!(r.buffered() <= BODY_PIECE + 2);
            if let Some(p) = r.take_full_piece() {
                got.extend_from_slice(&p);
            }
            if let Some(e) = ended {
                break e;
            }
            assert!(n > 0, "no progress at {pos}");
        };
        let Ended::Ok(last) = ended else {
            panic!("{ended:?}")
        };
        got.extend_from_slice(&last);
        assert_eq!(pos, input.len());
        assert_eq!(got, body);
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
